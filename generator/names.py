"""Names people and businesses go by: first and last names per country, job titles, company patterns.

Static reference data. Lists are ordered from most to least common; samplers
weight them with a Zipf-like curve so "Rossi" is frequent and "Dell'Orto" rare.
Spellings keep their accents and apostrophes on purpose (D'Angelo, Müller, Núñez).
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import polars as pl

from generator.streams import zipf_weights

FIRST_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "IT": {
        "M": ("Giuseppe", "Giovanni", "Antonio", "Mario", "Francesco", "Luigi", "Alessandro", "Andrea", "Marco",
              "Luca", "Matteo", "Lorenzo", "Angelo", "Vincenzo", "Pietro", "Salvatore", "Stefano", "Roberto",
              "Paolo", "Davide", "Simone", "Federico", "Riccardo", "Giorgio", "Michele", "Fabio", "Massimo",
              "Carlo", "Franco", "Domenico", "Daniele", "Leonardo", "Gabriele", "Tommaso", "Emanuele",
              "Claudio", "Maurizio", "Enrico", "Filippo", "Alberto", "Nicola", "Sergio", "Bruno", "Edoardo",
              "Niccolò", "Jacopo", "Mattia", "Diego", "Samuele", "Raffaele", "Gianluca", "Giancarlo",
              "Gian Marco", "Pierpaolo", "Cristian", "Luciano", "Aldo", "Ettore", "Ludovico", "Achille"),
        "F": ("Maria", "Anna", "Giulia", "Francesca", "Chiara", "Sara", "Laura", "Valentina", "Elena", "Sofia",
              "Alessandra", "Federica", "Martina", "Silvia", "Paola", "Giovanna", "Rosa", "Angela", "Lucia",
              "Elisa", "Roberta", "Cristina", "Barbara", "Simona", "Daniela", "Monica", "Antonella", "Ilaria",
              "Giorgia", "Aurora", "Alice", "Ginevra", "Emma", "Beatrice", "Camilla", "Teresa", "Caterina",
              "Carmela", "Giuseppina", "Noemi", "Greta", "Benedetta", "Arianna", "Marta", "Serena", "Michela",
              "Anna Maria", "Maria Grazia", "Rossella", "Letizia", "Viola", "Ludovica", "Nicoletta", "Irene"),
    },
    "FR": {
        "M": ("Jean", "Pierre", "Nicolas", "Thomas", "Julien", "Antoine", "Michel", "François", "Mathieu",
              "Alexandre", "Guillaume", "Louis", "Hugo", "Jean-Luc", "Benoît", "Théo"),
        "F": ("Marie", "Camille", "Sophie", "Nathalie", "Isabelle", "Julie", "Céline", "Léa", "Chloé", "Manon",
              "Élodie", "Hélène", "Anne-Sophie", "Aurélie", "Inès"),
    },
    "DE": {
        "M": ("Thomas", "Michael", "Andreas", "Stefan", "Christian", "Markus", "Alexander", "Jürgen", "Klaus",
              "Wolfgang", "Lukas", "Jonas", "Felix", "Maximilian", "Jörg", "Hans-Peter"),
        "F": ("Sabine", "Julia", "Anna", "Claudia", "Petra", "Katharina", "Monika", "Laura", "Lena", "Ursula",
              "Susanne", "Lea", "Sophie", "Jana", "Birgit", "Käthe"),
    },
    "AT": {
        "M": ("Lukas", "Thomas", "Michael", "Stefan", "Andreas", "Florian", "Markus", "Tobias", "David",
              "Johann", "Georg", "Jürgen"),
        "F": ("Anna", "Sarah", "Julia", "Lena", "Katharina", "Christina", "Elisabeth", "Theresa", "Magdalena",
              "Sabine", "Barbara", "Brigitte"),
    },
    "ES": {
        "M": ("Antonio", "José", "Manuel", "Francisco", "David", "Juan", "Javier", "Daniel", "Carlos", "Jesús",
              "Alejandro", "Pablo", "Sergio", "José Luis", "Álvaro"),
        "F": ("María", "Carmen", "Ana", "Laura", "Lucía", "Marta", "Isabel", "Cristina", "Paula", "Elena",
              "Sofía", "María José", "Raquel", "Nuria"),
    },
    "NL": {
        "M": ("Jan", "Daan", "Sem", "Lucas", "Bram", "Thijs", "Pieter", "Willem", "Joost", "Ruben", "Sander",
              "Bas"),
        "F": ("Emma", "Julia", "Sanne", "Lotte", "Anouk", "Fleur", "Sophie", "Eva", "Femke", "Lieke",
              "Marloes", "Iris"),
    },
}

LAST_NAMES: dict[str, tuple[str, ...]] = {
    "IT": ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
           "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti",
           "Barbieri", "Fontana", "Santoro", "Mariani", "Rinaldi", "Caruso", "Ferrara", "Galli", "Martini",
           "Leone", "Longo", "Gentile", "Martinelli", "Vitale", "Lombardo", "Serra", "Coppola", "De Santis",
           "D'Angelo", "Marchetti", "Parisi", "Villa", "Conte", "Ferraro", "Ferri", "Fabbri", "Bianco",
           "Marini", "Grasso", "Valentini", "Messina", "Sala", "De Angelis", "Gatti", "Pellegrini", "Palumbo",
           "Sanna", "Farina", "Rizzi", "Monti", "Cattaneo", "Morelli", "Amato", "Silvestri", "Mazza", "Testa",
           "Grassi", "Pellegrino", "Carbone", "Giuliani", "Benedetti", "Barone", "Rossetti", "Caputo",
           "Montanari", "Guerra", "Palmieri", "Bernardi", "Martino", "Fiore", "De Rosa", "Ferretti", "Bellini",
           "Basile", "Riva", "Donati", "Piras", "Vitali", "Battaglia", "Sartori", "Neri", "Costantini",
           "Milani", "Pagano", "Ruggiero", "Sorrentino", "D'Amico", "Orlando", "Di Stefano", "La Rosa",
           "D'Alessandro", "Lo Russo", "Dell'Acqua", "Lo Bianco", "Dal Monte", "Dell'Orto", "Di Giovanni",
           "Mazzoleni", "Bonetti", "Zanetti", "Fumagalli", "Brambilla", "Pozzi", "Cocco", "Melis", "Esposti"),
    "FR": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
           "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
           "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "Le Goff", "Rousseau",
           "Faure"),
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz",
           "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause",
           "Meier", "von Berg"),
    "AT": ("Gruber", "Huber", "Wagner", "Pichler", "Moser", "Steiner", "Mayer", "Hofer", "Leitner", "Berger",
           "Fuchs", "Eder", "Fischer", "Schmid", "Winkler", "Weber", "Schwarz", "Maier", "Reiter", "Brunner"),
    "ES": ("García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
           "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Alonso",
           "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil", "Serrano", "Núñez",
           "Iglesias", "de la Fuente"),
    "NL": ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit",
           "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen",
           "Dekker", "Brouwer", "de Wit", "Dijkstra", "van der Meer"),
}

# The listed surnames are each country's commonest; together they are only this share of its people
# (roughly: García and its peers are a quarter of Spain, Rossi and a hundred more a tenth of Italy,
# Müller and the next 29 a few per cent of Germany). Everyone else has one of thousands of rarer
# surnames, as real customer bases do: two strangers share a surname seldom, not one time in forty.
COMMON_SURNAME_SHARE: dict[str, float] = {"IT": 0.1, "FR": 0.05, "DE": 0.06, "AT": 0.06, "ES": 0.3, "NL": 0.08}

# The rarer surnames, every prefix ("" for none) with every root and ending, as each language forms them:
# Bianchini, Di Ferrucci, Duchesnet, Steinhuber, van der Veen, Castrillo.
SURNAME_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "IT": (("", "De ", "Di ", "La ", "Lo ", "Del ", "Dal "),
           ("Albert", "Amor", "Bagn", "Baldin", "Barber", "Bell", "Benvenut", "Bern", "Bertol", "Bonifac", "Borgh",
            "Boscar", "Cald", "Camp", "Capp", "Carr", "Castell", "Cavall", "Cecc", "Cerr", "Ciamp", "Colomb",
            "Cors", "Cristofar", "Dolc", "Fabr", "Falc", "Fav", "Ferr", "Fior", "Franc", "Gall", "Gaspar",
            "Giacom", "Grand", "Guid", "Lanz", "Lucc", "Maggi", "Manzon", "Marc", "Massar", "Mazz", "Mel",
            "Minell", "Mont", "Nard", "Negr", "Nicol", "Orsin", "Pagan", "Palm", "Pastor", "Pier", "Pinn",
            "Pont", "Porc", "Quart", "Ragazz", "Rond", "Sant", "Scarp", "Simon", "Spad", "Tadd", "Tomass",
            "Torr", "Vent", "Vecch", "Zamp", "Zucc"),
           ("i", "o", "a", "ini", "ino", "elli", "ello", "etti", "etto", "one", "oni", "ucci", "acci", "ato",
            "ati", "eri", "otti", "uzzi", "ardi", "esi", "aldi", "ieri", "ola", "iello", "ighi", "azzo")),
    "FR": (("", "Le ", "Du ", "De ", "La "),
           ("Bois", "Pont", "Chesn", "Mont", "Roch", "Fontain", "Moul", "Champ", "Mar", "Bourg", "Chastel",
            "Cler", "Brun", "Blanch", "Fab", "Lef", "Char", "Gauth", "Guill", "Perr", "Rob", "Bern", "Ger",
            "Laur", "Vin", "Lamb", "Mass", "Chev", "Bar", "Bouch", "Gir", "Fourn", "Merc", "Dum", "Coll",
            "Boul", "Poir", "Renaud", "Riv", "Gal", "Bon", "Mich", "Caill", "Court"),
           ("", "et", "ot", "eau", "ier", "in", "and", "aud", "on", "ard", "ais", "ault", "el", "oux", "ette")),
    "DE": (("",),
           ("Stein", "Wald", "Berg", "Hof", "Bach", "Brunn", "Eich", "Lind", "Rosen", "Neu", "Alt", "Groß", "Hoch",
            "Holz", "Kirch", "Mühl", "Schön", "Sonnen", "Grün", "Feld", "Eisen", "Hag", "Lehm", "Wies", "Fried",
            "Reich", "Hart", "Kling", "Mark", "Ober", "Unter", "Winter", "Sommer", "Bruck", "Dorn", "Hirsch",
            "Fleisch", "Zimmer", "Kauf", "Wein", "Glas", "Kessel", "Korb", "Zieg", "Stroh", "Kalt", "Lang"),
           ("mann", "er", "hofer", "bauer", "meier", "mayer", "huber", "berger", "müller", "hammer", "brunner",
            "wieser", "lechner", "reiter", "thaler", "bichler", "gruber", "schmid", "ner", "inger", "hardt",
            "stätter", "hausen", "ke")),
    "AT": (("",),
           ("Stein", "Wald", "Berg", "Hof", "Bach", "Brunn", "Eich", "Lind", "Rosen", "Neu", "Alt", "Groß", "Hoch",
            "Holz", "Kirch", "Mühl", "Schön", "Sonn", "Grün", "Feld", "Eisen", "Hag", "Lehm", "Wies", "Aigner",
            "Ebn", "Pirk", "Kogl", "Rauch", "Wimm", "Hinter", "Ober", "Unter", "Winkl", "Leit", "Zaun", "Lack"),
           ("er", "hofer", "bauer", "mayr", "huber", "berger", "bichler", "gruber", "lechner", "reiter", "thaler",
            "leitner", "wieser", "steiner", "egger", "auer", "eder", "moser", "ner", "mann")),
    "ES": (("",),
           ("Castr", "Orteg", "Delgad", "Veg", "Rubi", "Mor", "Medin", "Garr", "Cort", "Castill", "Santan",
            "Guerr", "Cabr", "Priet", "Herrer", "Montoy", "Carrasc", "Pard", "Calder", "Lozan", "Mart", "Sol",
            "Sot", "Paz", "Marqu", "Cam", "Campill", "Ballester", "Velasc", "Benít", "Rom", "Brav", "Rey",
            "Lorent", "Mont", "Salgad", "Barrer", "Cuev", "Rosal", "Villar"),
           ("o", "a", "ez", "es", "ero", "era", "illo", "illa", "ado", "ada", "ón", "al", "ar", "os")),
    "NL": (("", "van ", "van de ", "van der ", "de ", "ter ", "van den "),
           ("Berg", "Dijk", "Beek", "Veen", "Bosch", "Heuvel", "Wijk", "Dam", "Leeuwen", "Vliet", "Broek",
            "Hoven", "Meer", "Velde", "Loon", "Laar", "Haar", "Steen", "Rijn", "Kamp", "Brink", "Hof", "Horst",
            "Molen", "Zand", "Wal", "Graaf", "Linden", "Akker", "Weide", "Bruggen", "Hout"),
           ("", "s", "man", "sma", "stra", "ink", "ing", "huis", "er")),
}


@functools.cache
def surnames(country: str) -> tuple[tuple[str, ...], np.ndarray]:
    """The country's surnames, commonest first, and how likely each is: the listed ones Zipf-weighted
    to `COMMON_SURNAME_SHARE`, then the formed ones, in a fixed shuffled order, to the rest."""
    common = LAST_NAMES[country]
    prefixes, roots, endings = SURNAME_PARTS[country]
    if country == "IT":  # Rossi -> Ross-, Moretti -> Morett-: the listed names' stems as well
        roots = roots + tuple(name[:-1] for name in common if " " not in name and "'" not in name)
    formed = {prefix + root + ending for prefix in prefixes for root in roots for ending in endings}
    formed = {name for name in formed if 4 <= len(name) <= 18} - set(common)
    rare = sorted(formed, key=lambda name: zlib.crc32(name.encode()))  # fixed order, no run-time randomness
    share = COMMON_SURNAME_SHARE[country]
    head, tail = zipf_weights(len(common), 0.7), zipf_weights(len(rare), 0.5)
    weights = np.concatenate([share * head / head.sum(), (1 - share) * tail / tail.sum()])
    return common + tuple(rare), weights


JOB_TITLES: tuple[str, ...] = (
    "Titolare", "Buyer", "Responsabile Acquisti", "Marketing Manager", "CEO", "Office Manager",
    "Purchasing Manager", "Amministratore Delegato", "Store Manager", "F&B Manager", "Head Barista", "Chef",
    "Procurement Specialist", "Buyer, Food & Beverage", "Responsabile Marketing", "Sales Director",
    "Operations Manager", "Assistente di Direzione", "Event Manager", "Hotel Manager",
)

# Company name pieces. "{last}" is replaced by a surname of the company's country.
COMPANY_PATTERNS: dict[str, tuple[str, ...]] = {
    "IT": ("{last} S.r.l.", "{last} & Figli S.p.A.", "{last}, {last2} & C. S.n.c.", "Torrefazione {last}",
           "Bar {place}", "Hotel {place}", "Ristorante {place}", "{region} {sector} S.r.l.", "Studio {last}",
           "Caffetteria {place} S.a.s.", "Pasticceria {last}", "{last} Arredamenti S.r.l."),
    "FR": ("{last} SARL", "Café {place}", "Hôtel {place}", "{last} & Fils SAS"),
    "DE": ("{last} GmbH", "Café {place}", "{last} & Co. KG", "Hotel {place} GmbH"),
    "AT": ("{last} GmbH", "Kaffeehaus {place}", "Hotel {place}", "{last} & Söhne OG"),
    "ES": ("{last} S.L.", "Cafetería {place}", "Hotel {place} S.A.", "{last} y Asociados S.L."),
    "NL": ("{last} B.V.", "Koffiehuis {place}", "Hotel {place} B.V."),
}
COMPANY_PLACES: tuple[str, ...] = (
    "Centrale", "Aurora", "Excelsior", "Bellavista", "Miramare", "Duomo", "Stazione", "Vittoria", "Belvedere",
    "Savoy", "Panorama", "Il Gabbiano", "La Pergola", "Al Porto", "Sport", "del Corso", "Roma", "Italia",
)
COMPANY_REGIONS: tuple[str, ...] = ("Nord", "Adriatica", "Tirrenica", "Lombarda", "Veneta", "Toscana", "Emiliana",
                                    "Alpina", "Sud")
COMPANY_SECTORS: tuple[str, ...] = ("Distribuzione", "Forniture", "Servizi", "Ho.Re.Ca.", "Food", "Uffici")

# Shared mailboxes of a business, by country: several employees type these into forms.
ROLE_MAILBOXES: dict[str, tuple[str, ...]] = {
    "IT": ("info", "amministrazione", "ordini", "acquisti", "segreteria", "ufficio", "contabilita"),
    "FR": ("contact", "info", "compta"),
    "DE": ("info", "buero", "einkauf"),
    "AT": ("office", "info", "einkauf"),
    "ES": ("info", "administracion", "compras"),
    "NL": ("info", "administratie", "inkoop"),
}

# Letters without accents, for building email addresses from names.
ASCII_FOLD: dict[str, str] = {
    "à": "a", "á": "a", "â": "a", "ä": "a", "è": "e", "é": "e", "ê": "e", "ë": "e", "ì": "i", "í": "i",
    "î": "i", "ï": "i", "ò": "o", "ó": "o", "ô": "o", "ö": "o", "ù": "u", "ú": "u", "û": "u", "ü": "u",
    "ç": "c", "ñ": "n", "ß": "ss", "&": "", "'": "", "’": "", " ": "", "-": "", ".": "", ",": "",
}


def ascii_slug(names: pl.Expr) -> pl.Expr:
    """A name as it appears in an email address or domain: lower case, no accents, spaces or punctuation."""
    return names.str.to_lowercase().str.replace_many(list(ASCII_FOLD), list(ASCII_FOLD.values()))

# Diminutives people give instead of their first name (a sales rep types "Beppe", a form says "Gigi").
NICKNAMES: dict[str, tuple[str, ...]] = {
    # Italian
    "Giuseppe": ("Beppe", "Peppe", "Pino"), "Giovanni": ("Gianni", "Nanni"), "Antonio": ("Toni", "Totò"),
    "Francesco": ("Franco", "Checco"), "Luigi": ("Gigi",), "Alessandro": ("Sandro", "Alex"),
    "Vincenzo": ("Enzo",), "Salvatore": ("Totò", "Turi"), "Domenico": ("Mimmo",), "Massimo": ("Max",),
    "Federico": ("Fede",), "Riccardo": ("Ricky",), "Emanuele": ("Lele", "Manu"), "Raffaele": ("Lele",),
    "Tommaso": ("Tommy",), "Leonardo": ("Leo",), "Lorenzo": ("Renzo",), "Filippo": ("Pippo",),
    "Edoardo": ("Edo",), "Gabriele": ("Gabri",), "Matteo": ("Teo",), "Daniele": ("Dani",),
    "Giovanna": ("Gianna", "Vanna"), "Giuseppina": ("Pina", "Peppina"), "Francesca": ("Franci",),
    "Alessandra": ("Sandra", "Ale"), "Federica": ("Fede",), "Valentina": ("Vale",), "Cristina": ("Cri", "Tina"),
    "Antonella": ("Anto", "Nella"), "Simona": ("Simo",), "Daniela": ("Dani",), "Benedetta": ("Betta",),
    "Caterina": ("Cate", "Rina"), "Teresa": ("Tere",), "Beatrice": ("Bea",), "Ludovica": ("Ludo",),
    "Nicoletta": ("Nico",), "Martina": ("Marti",), "Rossella": ("Rosy",), "Ilaria": ("Ila",),
    "Elisa": ("Eli",), "Carmela": ("Melina",), "Maria Grazia": ("Mariagrazia", "Grazia"),
    "Anna Maria": ("Annamaria",), "Gian Marco": ("Gianmarco",),
    # French, German, Austrian, Spanish, Dutch
    "Nicolas": ("Nico",), "Alexandre": ("Alex",), "Mathieu": ("Matt",), "Jean-Luc": ("Jean",),
    "Anne-Sophie": ("Anne",), "Maximilian": ("Max",), "Alexander": ("Alex",), "Katharina": ("Kathi", "Katja"),
    "Christian": ("Chris",), "Andreas": ("Andi",), "Michael": ("Micha",), "Susanne": ("Susi",),
    "Elisabeth": ("Lisa", "Sissi"), "Johann": ("Hans",), "Theresa": ("Resi",), "Magdalena": ("Lena",),
    "Hans-Peter": ("Hans",), "José": ("Pepe",), "Francisco": ("Paco",), "Manuel": ("Manolo",),
    "Javier": ("Javi",), "Alejandro": ("Álex",), "Jesús": ("Chus",), "Willem": ("Wim",), "Pieter": ("Piet",),
}

# Slips of the keyboard in webmail domains (gmial.com), and the wrong country domain people type.
DOMAIN_TYPOS: dict[str, tuple[str, ...]] = {
    "gmail.com": ("gmial.com", "gmal.com", "gamil.com", "gmail.it", "gmail.con"),
    "libero.it": ("libreo.it", "libero.com", "lbero.it"), "hotmail.it": ("hotmial.it", "hotmail.com", "hotmal.it"),
    "yahoo.it": ("yaho.it", "yahoo.com", "yahooo.it"), "outlook.it": ("outlok.it", "outlook.com"),
    "virgilio.it": ("virgillio.it", "virgilo.it"), "alice.it": ("alcie.it",), "tiscali.it": ("tiscalli.it",),
    "icloud.com": ("iclod.com", "icloud.it"), "live.it": ("live.com",), "orange.fr": ("ornage.fr",),
    "free.fr": ("fre.fr",), "hotmail.fr": ("hotmial.fr",), "gmx.de": ("gmx.com", "gxm.de"), "web.de": ("wbe.de",),
    "t-online.de": ("tonline.de",), "hotmail.es": ("hotmial.es",), "yahoo.es": ("yaho.es",),
    "gmx.at": ("gmx.de",), "hotmail.com": ("hotmial.com", "hotmal.com"), "outlook.com": ("outlok.com",),
    "ziggo.nl": ("zigo.nl",),
}
