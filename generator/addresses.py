"""Where people live, street by street, and how their records spell it.

A person has one home street address (a family shares it; namesakes have their own). Shop
accounts carry it as the default shipping address and CRM contacts sometimes, each spelt as
forms and sales reps type it: abbreviated street types ("V.le", "C.so", "Str."), a comma or
"n." before the number, capitals, stray spaces. Draws come from streams of their own and are
made per record id, so the rest of the generated data is unchanged and every exported version
of one record carries the same spelling.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from generator import mess, names
from generator.streams import pick, zipf_weights

# Per country: street types (with weights), whether the type comes after the name as one word
# (Hauptstraße, Kerkstraat), whether the number comes first (12 rue Victor Hugo), and names.
_ITALIAN = ("Roma", "Garibaldi", "Giuseppe Mazzini", "Cavour", "Dante Alighieri", "Giuseppe Verdi", "Guglielmo Marconi",
            "Giacomo Matteotti", "Vittorio Emanuele II", "XX Settembre", "Antonio Gramsci", "Giacomo Leopardi",
            "Alessandro Manzoni", "Giacomo Puccini", "dei Mille", "della Repubblica", "San Francesco",
            "IV Novembre", "Milano", "Torino", "Venezia", "Firenze", "Nazionale", "Trieste", "Giosuè Carducci",
            "Giovanni Pascoli", "Armando Diaz", "Cesare Battisti", "Aldo Moro", "Europa", "della Libertà",
            "Don Giovanni Minzoni", "Galileo Galilei", "Enrico Fermi", "Alessandro Volta", "Cristoforo Colombo",
            "Umberto I", "Trento", "delle Rose", "dei Tigli", "Solferino", "Luigi Cadorna", "Pietro Nenni",
            "Sandro Pertini", "Giovanni XXIII", "Santa Maria", "del Lavoro", "della Pace", "Bologna", "Napoli",
            "Palestro", "Montegrappa", "Piave", "Isonzo", "Tagliamento", "San Giorgio", "Fratelli Bandiera",
            "Ugo Foscolo", "Torquato Tasso", "Ludovico Ariosto", "Raffaello Sanzio", "Leonardo da Vinci",
            "Michelangelo Buonarroti", "Gioacchino Rossini", "Gaetano Donizetti", "Vincenzo Bellini")
_FRENCH = ("de la République", "Victor Hugo", "Jean Jaurès", "de la Paix", "Pasteur", "du Général de Gaulle",
           "des Écoles", "de l'Église", "Gambetta", "Voltaire", "Émile Zola", "du Moulin", "de la Gare",
           "Carnot", "Jules Ferry", "de Verdun", "Foch", "Anatole France", "de Paris", "du Château",
           "des Lilas", "Nationale", "Saint-Michel", "de la Liberté", "Lamartine", "Molière", "Diderot")
_GERMAN = ("Haupt", "Bahnhof", "Schul", "Garten", "Dorf", "Berg", "Kirch", "Wald", "Ring", "Goethe", "Schiller",
           "Mozart", "Linden", "Birken", "Friedrich-Ebert-", "Blumen", "Wiesen", "Sonnen", "Am Markt", "Park",
           "Mühlen", "Feld", "Eichen", "Buchen", "Kastanien", "Beethoven", "Rosen", "Tannen", "Industrie")
_SPANISH = ("Mayor", "Real", "Nueva", "de la Iglesia", "del Sol", "San Juan", "Cervantes", "de Alcalá",
            "de Goya", "de la Constitución", "del Carmen", "de Santiago", "Gran Vía", "de la Paz", "San Antonio",
            "del Río", "de Valencia", "Colón", "Sagasta", "de Andalucía", "de Castilla", "Príncipe de Vergara")
_DUTCH = ("Kerk", "Dorps", "School", "Molen", "Stations", "Nieuwe", "Hoofd", "Julianan", "Beatrix", "Wilhelmina",
          "Oranje", "Prinsen", "Heren", "Keizers", "Linden", "Eiken", "Beuken", "Zand", "Markt", "Haven")


# country -> (types and weights, type after the name, number first, names)
STREETS: dict[str, tuple[dict[str, float], bool, bool, tuple[str, ...]]] = {
    "IT": ({"Via": 0.74, "Viale": 0.1, "Piazza": 0.06, "Corso": 0.06, "Largo": 0.04}, False, False, _ITALIAN),
    "FR": ({"rue": 0.7, "avenue": 0.15, "boulevard": 0.08, "place": 0.07}, False, True, _FRENCH),
    "DE": ({"straße": 0.75, "weg": 0.2, "allee": 0.05}, True, False, _GERMAN),
    "AT": ({"straße": 0.55, "gasse": 0.3, "weg": 0.15}, True, False, _GERMAN),
    "ES": ({"Calle": 0.75, "Avenida": 0.15, "Plaza": 0.05, "Paseo": 0.05}, False, False, _SPANISH),
    "NL": ({"straat": 0.6, "weg": 0.25, "laan": 0.15}, True, False, _DUTCH),
}

LOCAL_STREETS = 0.7  # share of home streets named after a local person rather than a famous name

# How forms and reps shorten street types (each spelling is one of these, or the word as is).
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "Via": ("V.",), "Viale": ("V.le",), "Piazza": ("P.zza", "P.za"), "Corso": ("C.so",), "Largo": ("L.go",),
    "avenue": ("av.", "ave"), "boulevard": ("bd", "bld"), "place": ("pl.",),
    "straße": ("str.", "strasse"), "gasse": ("g.",), "allee": ("al.",),
    "Calle": ("C/", "C."), "Avenida": ("Avda.", "Av."), "Plaza": ("Pza.",), "Paseo": ("Pº",),
    "straat": ("str.",), "laan": ("ln",),
}


def home_addresses(rng: np.random.Generator, people: pl.DataFrame) -> pl.Series:
    """One street line per person ("Via Giuseppe Verdi 12"); a family's relative gets the head's.

    Most streets are named after local people (Via Lucia Bianchi, Müllerstraße), the rest after
    famous ones, Zipf-weighted (every town has a Via Roma); house numbers are mostly small, so
    neighbours share a line now and then, as they do in a block of flats.
    """
    n = people.height
    line = pl.repeat("", n, eager=True, dtype=pl.String)
    countries = people["country"].to_numpy()
    for code, (types, type_after, number_first, street_names) in STREETS.items():
        rows = np.flatnonzero(countries == code)
        kinds = pl.Series(list(types)).gather(pick(rng, len(rows), list(types.values())))
        named = pl.Series(street_names).gather(pick(rng, len(rows), zipf_weights(len(street_names), 0.6)))
        # Most streets of a city are named after someone local: thousands of them, not a few dozen.
        firsts = pl.Series(names.FIRST_NAMES[code]["M"] + names.FIRST_NAMES[code]["F"])
        lasts = pl.Series(names.surnames(code)[0])
        person = (firsts.gather(rng.integers(0, len(firsts), len(rows))) + " "
                  + lasts.gather(rng.integers(0, len(lasts), len(rows))))
        if type_after:  # Müllerstraße: a surname, one word
            person = lasts.gather(rng.integers(0, len(lasts), len(rows))).str.replace_all(" ", "")
            person = person.str.slice(0, 1).str.to_uppercase() + person.str.slice(1)  # deWit -> DeWit
        named = pl.select(pl.when(pl.lit(pl.Series(rng.random(len(rows)) < LOCAL_STREETS))).then(pl.lit(person))
                          .otherwise(pl.lit(named))).to_series()
        number = (1 + np.minimum(rng.exponential(30, len(rows)), 300)).astype(np.int64).astype(str)
        suffix = np.where(rng.random(len(rows)) < 0.04, "/" + pl.Series(["A", "B", "C"]).gather(
            pick(rng, len(rows), [0.6, 0.3, 0.1])).to_numpy(), "")
        frame = pl.DataFrame({"kind": kinds, "name": named, "number": np.char.add(number, suffix)})
        if type_after:  # Hauptstraße 12; a name that is a phrase keeps its type apart (Am Markt 3)
            street = pl.when(pl.col("name").str.contains(" ")).then(pl.col("name")).otherwise(
                pl.col("name") + pl.col("kind"))
            text = street + " " + pl.col("number")
        elif number_first:
            text = pl.col("number") + " " + pl.col("kind") + " " + pl.col("name")
        else:
            text = pl.col("kind") + " " + pl.col("name") + " " + pl.col("number")
        line.scatter(rows, frame.select(text).to_series())
    relative = people["relative_of"].fill_null(0).to_numpy() - 1  # the relative's row, -1 when none
    index = np.arange(n)
    return line.gather(np.where((relative >= 0) & (relative < index), relative, index))


def office_addresses(rng: np.random.Generator, people: pl.DataFrame) -> pl.Series:
    """Per person, the street line of their employer's office (null for people without one): what a
    B2B contact's CRM record carries, not their home."""
    offices = (people.filter(pl.col("company_id").is_not_null()).group_by("company_id").agg(pl.col("country").first())
               .sort("company_id").with_columns(relative_of=pl.lit(None, dtype=pl.Int64)))
    line = home_addresses(rng, offices)
    return people.select(pl.col("company_id").replace_strict(offices["company_id"], line, default=None,
                                                             return_dtype=pl.String)).to_series()


def on_records(rng: np.random.Generator, frame: pl.DataFrame, addresses: pl.Series, record_id: str,
               share: float, messiness: float) -> pl.DataFrame:
    """`frame` (records with person_index) with an `address` column: the person's, on `share` of the
    records, spelt messily on `messiness` of those. Drawn per record id (all versions alike)."""
    key = frame[record_id].rank("dense").cast(pl.Int64).to_numpy() - 1
    n_ids = int(key.max()) + 1 if len(key) else 0
    present = (rng.random(n_ids) < share)[key]
    messy = (rng.random(n_ids) < messiness)[key]
    style = pick(rng, n_ids, [0.3, 0.25, 0.15, 0.15, 0.15])[key]
    line = addresses.gather(frame["person_index"])
    spelled = spell_addresses(line, np.where(messy, style, -1))
    return frame.with_columns(address=pl.select(pl.when(pl.lit(pl.Series(present))).then(
        pl.lit(spelled))).to_series())


def spell_addresses(lines: pl.Series, style: np.ndarray) -> pl.Series:
    """Street lines as typed: style 0 the street type abbreviated, 1 a comma (or "n.") before the
    number, 2 capitals, 3 lower case with stray spaces, 4 abbreviated and capitals; -1 as is."""
    v, s = pl.col("v"), pl.col("s")
    shortened = v
    for word, short in ABBREVIATIONS.items():
        shortened = shortened.str.replace(rf"(^|\s|[a-zäöüß]){word}(\s|$)", rf"${{1}}{short[0]}${{2}}")
    # "Via Roma, 12", "Hauptstraße, 12", "12, rue Victor Hugo"
    numbered = pl.when(v.str.contains(r"^[0-9]")).then(v.str.replace(r"^([0-9]+) ", "$1, ")).otherwise(
        v.str.replace(r" ([0-9]+(/[A-C])?)$", ", $1"))
    spelled = (
        pl.when(s == 0).then(shortened)
        .when(s == 1).then(pl.when(v.str.starts_with("V")).then(v.str.replace(r" ([0-9]+)", " n. $1"))
                           .otherwise(numbered))
        .when(s == 2).then(v.str.to_uppercase())
        .when(s == 3).then("  " + v.str.to_lowercase().str.replace(" ", "  ", literal=True) + " ")
        .when(s == 4).then(shortened.str.to_uppercase())
        .otherwise(v)
    )
    return pl.DataFrame({"v": lines, "s": style}).select(spelled).to_series()


def on_orders(rng: np.random.Generator, orders: pl.DataFrame, people: pl.DataFrame,
              offices: pl.Series) -> pl.DataFrame:
    """`orders` (with person_index and channel) with the shipping name and address a web or app checkout
    asks for, as the buyer types it each time (a store sale ships nothing); an order placed with a
    work email ships to the office (`offices`: office_addresses). Drawn per order id."""
    key = orders["order_id"].rank("dense").cast(pl.Int64).to_numpy() - 1
    n_ids = int(key.max()) + 1 if len(key) else 0
    messy = (rng.random(n_ids) < 0.3)[key]
    style = pick(rng, n_ids, [0.3, 0.25, 0.15, 0.15, 0.15])[key]
    who = people.select("first_name", "last_name", "address", "city", "postal_code", "work_email",
                        office=offices).gather(orders["person_index"])
    at_work = (orders["email"].str.strip_chars().str.to_lowercase() == who["work_email"]).fill_null(False)
    who = who.with_columns(address=pl.when(pl.lit(at_work) & pl.col("office").is_not_null())
                           .then(pl.col("office")).otherwise(pl.col("address")))
    ships = pl.lit(pl.Series((orders["channel"] != "store").to_numpy()))

    def shipped(values: pl.Series) -> pl.Series:
        return pl.select(pl.when(ships).then(pl.lit(values))).to_series()

    return orders.with_columns(
        shipping_first_name=shipped(mess.spell_names(rng, who["first_name"], 0.08)),
        shipping_last_name=shipped(mess.spell_names(rng, who["last_name"], 0.08)),
        shipping_address=shipped(spell_addresses(who["address"], np.where(messy, style, -1))),
        shipping_city=shipped(who["city"]),
        shipping_postal_code=shipped(who["postal_code"]),
    )
