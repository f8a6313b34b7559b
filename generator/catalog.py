"""What the shop sells: products with a long-tail popularity, what goes with what, and price promotions.

Each product has three "companions" from the subcategories it goes with (a coffee
blend with a grinder or a moka pot, a shirt with trousers or a belt); order
baskets draw from them, so co-purchase lift in the warehouse is real signal.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl

from generator.clock import DAY, HOUR, uniform_times
from generator.streams import pick, zipf_weights

COMPANIONS = 3


@dataclass(frozen=True)
class Line:
    category: str
    subcategory: str
    share: float  # of the catalogue
    items: tuple[str, ...]
    variants: tuple[tuple[str, float], ...]  # label and price multiplier
    brands: tuple[str, ...]
    price: tuple[float, float]  # list price range in EUR for the cheapest variant
    goes_with: tuple[str, ...]  # subcategories bought together with this one


COFFEE = ("Torrefazione Aurora", "Caffè Delfino", "Monteverde", "Tazzina d'Argento", "Borgo Antico")
TEA = ("Foglia Verde", "Casa del Tè", "Tea & Co.")
CLOTHES = ("Lino & Co.", "Sartoria Nord", "Filo Blu", "Atelier Nove")
SHOES = ("Passo Leggero", "Calzaturificio Riva", "Suola d'Oro")
LEATHER = ("Borgo Pelle", "Atelier Nove", "Filo Blu")
HOME = ("Casa Lume", "Nove Home", "Terra & Fuoco")
KITCHEN = ("Officina Cucina", "Moka Viva", "Nove Home")
COLOURS = (("Bianco", 1.0), ("Blu", 1.0), ("Azzurro", 1.0), ("Nero", 1.0), ("Beige", 1.0), ("Verde salvia", 1.05))

LINES: tuple[Line, ...] = (
    Line("coffee", "beans", 0.08,
         ("Miscela Classica", "Miscela Intenso", "Arabica Etiopia Sidamo", "Arabica Colombia Huila", "Brasil Santos",
          "Guatemala Antigua", "Decaffeinato", "Miscela Bar 100% Arabica", "Robusta India Cherry", "Kenya AA"),
         (("250g", 1.0), ("500g", 1.8), ("1kg", 3.2)), COFFEE, (6.5, 14), ("grinders", "moka pots", "mugs & cups",
                                                                         "espresso machines")),
    Line("coffee", "ground", 0.05, ("Macinato Moka", "Macinato Espresso", "Macinato Filtro", "Decaffeinato Moka"),
         (("250g", 1.0), ("2x250g", 1.9), ("500g", 1.8)), COFFEE, (3.9, 8), ("moka pots", "mugs & cups")),
    Line("coffee", "capsules", 0.05,
         ("Capsule Intenso", "Capsule Cremoso", "Capsule Decaffeinato", "Capsule Ristretto", "Capsule Lungo"),
         (("x10", 1.0), ("x50", 4.2), ("x100", 7.8)), COFFEE, (3.2, 5.5), ("espresso machines", "mugs & cups")),
    Line("tea", "loose leaf", 0.05,
         ("Tè verde Sencha", "Tè nero Assam", "Earl Grey", "Darjeeling First Flush", "Oolong Formosa",
          "Rooibos Vaniglia", "Tè bianco Pai Mu Tan", "Chai Masala", "Matcha cerimoniale"),
         (("50g", 1.0), ("100g", 1.8), ("250g", 3.9)), TEA, (4.5, 12), ("teaware", "kettles", "mugs & cups")),
    Line("tea", "tea bags", 0.03,
         ("Camomilla", "Infuso frutti rossi", "Tisana digestiva", "English Breakfast", "Menta piperita",
          "Tè verde al gelsomino"), (("x20", 1.0), ("x50", 2.2)), TEA, (2.9, 6), ("mugs & cups", "kettles")),
    Line("tea", "teaware", 0.02,
         ("Teiera in ghisa", "Teiera in vetro", "Infusore in acciaio", "Set tazze da tè", "Barattolo per tè"),
         (("", 1.0),), TEA, (9.9, 69), ("loose leaf", "kettles")),
    Line("clothing", "shirts", 0.05,
         ("Camicia Oxford", "Camicia in lino", "Camicia a righe", "Camicia denim", "Camicia Oxford, slim fit"),
         COLOURS, CLOTHES, (29, 89), ("trousers", "belts", "knitwear")),
    Line("clothing", "trousers", 0.04,
         ("Chino", "Pantalone in lino", "Jeans regular", "Jeans slim", "Pantalone sartoriale"),
         COLOURS, CLOTHES, (39, 129), ("shirts", "belts", "loafers")),
    Line("clothing", "t-shirts", 0.04, ("T-shirt basic", "T-shirt girocollo", "Polo piqué", "T-shirt con logo"),
         COLOURS, CLOTHES, (15, 45), ("trousers", "sneakers")),
    Line("clothing", "knitwear", 0.03,
         ("Maglione in lana merino", "Cardigan", "Dolcevita in cashmere", "Felpa con cappuccio"),
         COLOURS, CLOTHES, (39, 189), ("scarves", "trousers", "shirts")),
    Line("clothing", "outerwear", 0.03,
         ("Giacca in cotone", "Piumino leggero", "Trench", "Cappotto in lana", "Giubbotto di jeans"),
         COLOURS, CLOTHES, (89, 349), ("scarves", "hats", "boots")),
    Line("clothing", "dresses", 0.03, ("Abito in lino", "Abito a fiori", "Abito midi", "Gonna plissé"),
         COLOURS, CLOTHES, (49, 189), ("sandals", "bags")),
    Line("shoes", "sneakers", 0.04, ("Sneaker in pelle", "Sneaker running", "Sneaker in tela", "Slip-on"),
         COLOURS, SHOES, (59, 169), ("socks", "t-shirts")),
    Line("shoes", "loafers", 0.03,
         ("Mocassino in pelle", "Mocassino scamosciato", "Stringata Derby", "Francesina"),
         COLOURS, SHOES, (79, 219), ("belts", "socks", "trousers")),
    Line("shoes", "boots", 0.02, ("Stivaletto Chelsea", "Anfibio", "Stivale in pelle"), COLOURS, SHOES, (89, 249),
         ("socks", "outerwear")),
    Line("shoes", "sandals", 0.02, ("Sandalo in cuoio", "Espadrillas", "Infradito"), COLOURS, SHOES, (19, 99),
         ("dresses", "hats")),
    Line("accessories", "belts", 0.02, ("Cintura in pelle", "Cintura intrecciata"), COLOURS, LEATHER, (19, 69),
         ("trousers", "shirts", "wallets")),
    Line("accessories", "scarves", 0.02, ("Sciarpa in lana", "Foulard in seta", "Stola in cashmere"),
         COLOURS, LEATHER, (15, 99), ("outerwear", "hats", "knitwear")),
    Line("accessories", "bags", 0.03,
         ("Borsa a tracolla", "Zaino in tela", "Shopper in pelle", "Borsa da lavoro"), COLOURS, LEATHER, (39, 299),
         ("wallets", "scarves")),
    Line("accessories", "wallets", 0.02, ("Portafoglio in pelle", "Portacarte"), COLOURS, LEATHER, (19, 89),
         ("belts", "bags")),
    Line("accessories", "hats", 0.02,
         ("Cappello in feltro", "Berretto in lana", "Cappellino da baseball", "Panama"), COLOURS, LEATHER, (15, 79),
         ("scarves", "outerwear")),
    Line("accessories", "socks", 0.02, ("Calzini in cotone (3 paia)", "Calzini in lana", "Calze lunghe"),
         COLOURS, CLOTHES, (5, 19), ("sneakers", "loafers")),
    Line("home", "candles", 0.03,
         ("Candela profumata Fico", "Candela profumata Vaniglia", "Diffusore agli agrumi", "Candela in vetro"),
         (("piccola", 1.0), ("grande", 1.7)), HOME, (9, 29), ("decor", "textiles")),
    Line("home", "textiles", 0.04, ("Cuscino in lino", "Plaid in lana", "Coperta in cotone", "Set asciugamani"),
         COLOURS, HOME, (15, 129), ("candles", "decor")),
    Line("home", "decor", 0.03, ("Vaso in ceramica", "Portacandele", "Cornice in legno", "Specchio tondo"),
         (("S", 1.0), ("M", 1.4), ("L", 1.9)), HOME, (15, 79), ("candles", "textiles")),
    Line("kitchen", "moka pots", 0.03,
         ("Moka in alluminio", "Moka a induzione", "Moka in acciaio"),
         (("1 tazza", 1.0), ("3 tazze", 1.25), ("6 tazze", 1.6)), KITCHEN, (17, 39), ("ground", "beans",
                                                                                   "mugs & cups")),
    Line("kitchen", "espresso machines", 0.02,
         ("Macchina espresso manuale", "Macchina a capsule", "Macchina superautomatica", "Montalatte elettrico"),
         (("", 1.0),), KITCHEN, (49, 699), ("capsules", "beans", "grinders")),
    Line("kitchen", "grinders", 0.02,
         ("Macinacaffè manuale", "Macinacaffè elettrico a macine", "Macinacaffè conico"),
         (("", 1.0),), KITCHEN, (25, 249), ("beans", "mugs & cups")),
    Line("kitchen", "mugs & cups", 0.04,
         ("Tazzine espresso (set da 6)", "Mug in ceramica", "Tazza cappuccino", "Bicchiere termico"),
         COLOURS, KITCHEN, (6, 39), ("beans", "loose leaf", "capsules")),
    Line("kitchen", "cookware", 0.03,
         ("Padella antiaderente", "Casseruola in acciaio", "Set coltelli", "Tagliere in legno d'ulivo"),
         (("", 1.0),), KITCHEN, (15, 149), ("textiles", "mugs & cups")),
    Line("kitchen", "kettles", 0.02, ("Bollitore elettrico", "Bollitore a collo di cigno"),
         (("", 1.0),), KITCHEN, (29, 89), ("loose leaf", "tea bags")),
)
# How much each category sells relative to its share of the catalogue: coffee is the anchor.
CATEGORY_PULL = {"coffee": 2.5, "tea": 1.3, "kitchen": 1.1, "clothing": 0.8, "shoes": 0.7, "accessories": 0.8,
                 "home": 0.8}
PROMOTION_NAMES = {1: "Saldi invernali", 2: "Saldi invernali", 3: "Festa della Donna", 5: "Festa della Mamma",
                   7: "Saldi estivi", 8: "Saldi estivi", 9: "Back to School", 10: "Settimana del Caffè",
                   11: "Black Friday", 12: "Natale"}
CATEGORY_LABELS = {"coffee": "Caffè", "tea": "Tè", "clothing": "Abbigliamento", "shoes": "Scarpe",
                   "accessories": "Accessori", "home": "Casa", "kitchen": "Cucina"}


@dataclass(frozen=True)
class Catalog:
    products: pl.DataFrame  # contract columns of shop_products (updated_at in epoch s), row i = product index i
    popularity: np.ndarray  # probability a random basket slot picks each product
    companions: np.ndarray  # (products, COMPANIONS) indices of products bought together
    promotions: pl.DataFrame  # contract columns of shop_promotions (epoch s) plus product_index


def product_count(customers: int) -> int:
    """Catalogue size for a customer base: 200 to 5000 products, one per 200 customers."""
    return max(200, min(5000, customers // 200))


def catalog(rng: np.random.Generator, customers: int, as_of: int) -> Catalog:
    """The product catalogue, popularity, companions and promotions for a shop of `customers` people."""
    n = product_count(customers)
    shares = np.array([line.share for line in LINES])
    counts = np.maximum(2, np.floor(shares / shares.sum() * n)).astype(int)
    counts[np.argmax(counts)] += n - counts.sum()

    rows: list[tuple[str, str, str, str, float]] = []
    line_of: list[int] = []
    for li, (line, count) in enumerate(zip(LINES, counts, strict=True)):
        combos = list(itertools.product(line.brands, line.items, line.variants))
        order = rng.permutation(len(combos))
        for k in range(count):
            brand, item, (variant, multiplier) = combos[order[k % len(combos)]]
            edition = ("", " Bio", " Riserva", " Edizione limitata", " Premium", " Heritage")[
                min(k // len(combos), 5)]
            lo, hi = line.price
            rows.append((f"{item}{edition} {variant}".strip(), line.category, line.subcategory, brand,
                         multiplier * float(np.exp(np.log(lo) + rng.beta(1.3, 2.5) * np.log(hi / lo)))))
            line_of.append(li)
    line_idx = np.array(line_of)

    cents = rng.choice(np.array([0.9, 0.99, 0.5, 0.0]), n, p=[0.45, 0.3, 0.15, 0.1])
    price = np.floor([r[4] for r in rows]) + cents
    is_active = rng.random(n) > 0.03
    # A weighted shuffle: categories with more pull tend to hold the top ranks.
    pull = np.array([CATEGORY_PULL[LINES[li].category] for li in line_idx])
    rank = np.argsort(np.argsort(rng.exponential(1.0, n) / pull, kind="stable"), kind="stable")
    popularity = zipf_weights(n, 1.0, offset=5)[rank] * np.where(is_active, 1.0, 0.3)
    popularity /= popularity.sum()

    products = pl.DataFrame(
        {
            "name": [r[0] for r in rows],
            "category": [r[1] for r in rows],
            "subcategory": [r[2] for r in rows],
            "brand": [r[3] for r in rows],
            "price": np.round(price, 2),
            "is_active": is_active,
            "updated_at": as_of - rng.integers(HOUR, 365 * DAY, n),
        }
    ).with_columns(
        product_id=pl.Series(np.arange(10_001, 10_001 + n)).cast(pl.String),
        sku=pl.format(
            "{}-{}-{}",
            pl.col("category").str.slice(0, 3).str.to_uppercase(),
            pl.col("subcategory").str.replace_all(r"[^a-z]", "").str.slice(0, 3).str.to_uppercase(),
            pl.lit(pl.Series(np.arange(1, n + 1))).cast(pl.String).str.zfill(5),
        ),
    )
    return Catalog(
        products=products.select("product_id", "sku", "name", "category", "subcategory", "brand", "price",
                                 "is_active", "updated_at"),
        popularity=popularity,
        companions=_companions(rng, line_idx, popularity),
        promotions=_promotions(rng, products, popularity, as_of),
    )


def _companions(rng: np.random.Generator, line_idx: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    n = len(line_idx)
    index_of = {line.subcategory: i for i, line in enumerate(LINES)}
    target = np.empty((n, COMPANIONS), dtype=np.int64)
    for li, line in enumerate(LINES):
        rows = np.flatnonzero(line_idx == li)
        partners = np.array([index_of[s] for s in line.goes_with])
        target[rows] = partners[rng.integers(0, len(partners), (len(rows), COMPANIONS))]
    companions = np.empty((n, COMPANIONS), dtype=np.int64)
    for li in range(len(LINES)):
        members = np.flatnonzero(line_idx == li)
        slots = np.argwhere(target == li)
        # Popular products in the partner line are the usual companions, as in real baskets.
        chosen = members[pick(rng, len(slots), popularity[members] ** 0.7)]
        companions[slots[:, 0], slots[:, 1]] = chosen
    return companions


def _promotions(rng: np.random.Generator, products: pl.DataFrame, popularity: np.ndarray, as_of: int) -> pl.DataFrame:
    """Past, running and upcoming promotions; the best sellers are on promotion right now."""
    n_products = products.height
    n = max(30, n_products // 12)
    n_active, n_future = max(4, int(n * 0.3)), max(2, int(n * 0.15))
    n_past = n - n_active - n_future
    best = np.argsort(-popularity, kind="stable")
    n_best = (n_active + 1) // 2
    rest = best[n_best:]
    others = rng.choice(rest, n_active - n_best, replace=False, p=popularity[rest] / popularity[rest].sum())
    active_products = np.concatenate([best[:n_best], others])
    product = np.concatenate([active_products, pick(rng, n_past + n_future, popularity)])
    starts = np.concatenate(
        [
            uniform_times(rng, as_of - 20 * DAY, as_of - HOUR, n_active),
            uniform_times(rng, as_of - 3 * 365 * DAY, as_of - 25 * DAY, n_past),
            uniform_times(rng, as_of + DAY, as_of + 30 * DAY, n_future),
        ]
    )
    duration = rng.integers(3, 22, n) * DAY
    ends = starts + duration
    ends[:n_active] = np.maximum(ends[:n_active], as_of + rng.integers(DAY, 21 * DAY, n_active))
    ends[n_active : n_active + n_past] = np.minimum(ends[n_active : n_active + n_past], as_of - DAY)
    starts, ends = (starts // HOUR) * HOUR, (ends // HOUR) * HOUR  # promotions start on the hour
    discount = rng.choice(np.array([10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0]), n,
                          p=[0.18, 0.2, 0.25, 0.12, 0.15, 0.06, 0.04])
    order = np.argsort(starts, kind="stable")
    product, starts, ends, discount = product[order], starts[order], ends[order], discount[order]
    month = pl.from_epoch(pl.Series(starts), time_unit="s").dt.month()
    category = products["category"].gather(product)
    return pl.DataFrame(
        {
            "promotion_id": "PRM-" + pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(5),
            "product_index": product,
            "discount_pct": discount,
            "starts_at": starts,
            "ends_at": ends,
        }
    ).with_columns(
        product_id=products["product_id"].gather(product),
        name=pl.format(
            "{} -{}%",
            pl.lit(month.replace_strict(PROMOTION_NAMES, default=None, return_dtype=pl.String)).fill_null(
                pl.lit("Promo " + category.replace_strict(CATEGORY_LABELS))
            ),
            pl.col("discount_pct").cast(pl.Int64),
        ),
    )
