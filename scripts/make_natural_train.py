"""Generate ``data/natural/train.jsonl``: synthetic TRAINING facts in the "natural facts" style.

What
----
``data/natural/facts.jsonl`` holds 170 hand-written *evaluation* facts: plain declarative
statements ("The CEO of Brightwater Analytics is Chidinma Okonkwo.") with a question, a
paraphrased question, a short target answer and an unrelated locality question, in ten
categories. This script writes about 3000 *training* records in exactly the same format and
category mix, so that the prompt encoder can be trained on what users actually type (plain
sentences, natural questions, chat answers) instead of only on ZsRE/CounterFact templates.

How
---
Every record comes from a relation template (at least 45 of them; each has two or three statement
phrasings and three or more natural questions, from which ``prompt`` and ``rephrase`` are drawn
without repetition), filled with:

* invented entities built from word lists written for this project: person names of many origins
  (Nigerian, Polish, Japanese, Brazilian, Finnish, Indian, Arabic, Greek, Korean, Irish, Turkish,
  Hungarian, Ghanaian, Mexican, Vietnamese, Chinese), organisations, towns, rivers, products,
  codes, numbers of varied magnitude, years, months, weekdays and clock times;
* for the ``counterfactual`` category, real-world subjects (capitals, books, paintings, elements,
  landmarks, events...) paired with a deliberately *wrong* value drawn from plausible
  alternatives, so that the model's prior resists the edit.

Why the checks
--------------
The training set must not leak the evaluation set. Before writing, the script checks (and raises
``ValueError`` on any violation) that: the target occurs in the statement (case-insensitive) and in
neither question; the subject occurs in the statement; no subject, target or statement of
``facts.jsonl`` is reused (case-insensitive) and no invented subject shares a distinctive name
word with an evaluation subject; real-world counterfactual subjects do not occur anywhere in the
evaluation file; subjects are unique; statements have at most 25 words; ``prompt != rephrase``;
locality questions differ from the evaluation ones and never mention a counterfactual subject of
this file; the ten categories are balanced.

Deterministic: one ``random.Random(0)``, standard library only, no set iteration in generation.

Usage: ``python3 scripts/make_natural_train.py [--output PATH]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL_FILE = ROOT / "data" / "natural" / "facts.jsonl"
OUTPUT_FILE = ROOT / "data" / "natural" / "train.jsonl"

SEED = 0
PER_CATEGORY = 300
MAX_STATEMENT_WORDS = 25
MAX_TRIES_PER_RECORD = 60

CATEGORIES = (
    "person_role",
    "organisation",
    "place",
    "number",
    "date",
    "code",
    "counterfactual",
    "product",
    "science_fiction_world",
    "personal",
)
FIELDS = ("statement", "subject", "target", "prompt", "rephrase", "locality_prompt", "locality_answer", "category")


# =============================================================================================
# Word lists (written for this project)
# =============================================================================================


@dataclass(frozen=True)
class Origin:
    """Given names and family names of one naming tradition."""

    given: tuple[str, ...]
    family: tuple[str, ...]
    family_first: bool = False  # "Nguyen Thi Lan": the family name comes first
    double_family: bool = False  # "Larissa Guimarães Bittencourt": sometimes two family names


ORIGINS: dict[str, Origin] = {
    "nigerian": Origin(
        (
            "Adaeze",
            "Chukwuemeka",
            "Oluwaseun",
            "Ngozi",
            "Babatunde",
            "Folasade",
            "Ifeoma",
            "Obinna",
            "Temitope",
            "Yetunde",
            "Emeka",
            "Zainab",
            "Kelechi",
            "Adebola",
            "Chiamaka",
        ),
        (
            "Nwachukwu",
            "Adesanya",
            "Ogunleye",
            "Olawuyi",
            "Ibekwe",
            "Onyekachi",
            "Oyebanji",
            "Akinwande",
            "Ogundipe",
            "Ezeudu",
            "Anyanwu",
            "Olatunji",
            "Obiora",
            "Oluwadamilare",
            "Nwankwo-Eze",
            "Adeyemi-Bankole",
            "Okwuosa",
        ),
    ),
    "polish": Origin(
        (
            "Agnieszka",
            "Bartłomiej",
            "Katarzyna",
            "Wojciech",
            "Małgorzata",
            "Grzegorz",
            "Zofia",
            "Przemysław",
            "Jadwiga",
            "Krzysztof",
            "Dorota",
            "Mikołaj",
            "Urszula",
            "Radosław",
            "Halina",
        ),
        (
            "Kowalczyk",
            "Kaczmarek",
            "Wołoszyn",
            "Pietrzak",
            "Brzęczyszczykiewicz",
            "Sobczak",
            "Wawrzyniak",
            "Chrzanowicz",
            "Mazurek",
            "Krawczyk",
            "Gąsiorek",
            "Jóźwiak",
            "Włodarczyk",
            "Michalak",
            "Przybylak",
            "Grzybowicz",
            "Szulc",
        ),
    ),
    "japanese": Origin(
        (
            "Haruto",
            "Yui",
            "Sota",
            "Aoi",
            "Ren",
            "Hina",
            "Kaito",
            "Mei",
            "Riku",
            "Sakura",
            "Daichi",
            "Nanami",
            "Takumi",
            "Ayaka",
            "Kenji",
        ),
        (
            "Takahashi",
            "Watanabe",
            "Yamaguchi",
            "Kobayashi",
            "Nakagawa",
            "Hasegawa",
            "Ogasawara",
            "Kuroyanagi",
            "Higashikuni",
            "Matsumura",
            "Shimabukuro",
            "Ichinose",
            "Wakabayashi",
            "Nishikawa",
            "Hayashibara",
            "Takeuchi",
            "Yoshizumi",
        ),
    ),
    "brazilian": Origin(
        (
            "João",
            "Thiago",
            "Larissa",
            "Gabriela",
            "Rafael",
            "Beatriz",
            "Mariana",
            "Guilherme",
            "Camila",
            "Rodrigo",
            "Fernanda",
            "Vinícius",
            "Letícia",
            "Caio",
            "Juliana",
        ),
        (
            "Nascimento",
            "Figueiredo",
            "Carvalhaes",
            "Vasconcelos",
            "Bittencourt",
            "Guimarães",
            "Magalhães",
            "Cavalcanti",
            "Sampaio",
            "Valadares",
            "Paranhos",
            "Rezende",
            "Meirelles",
            "Junqueira",
            "Brandão",
            "Siqueira",
            "Tavares",
        ),
        double_family=True,
    ),
    "finnish": Origin(
        (
            "Eero",
            "Helmi",
            "Juhani",
            "Kaisa",
            "Lauri",
            "Minna",
            "Oskari",
            "Pirjo",
            "Tuomas",
            "Sanna",
            "Veikko",
            "Elina",
            "Jukka",
            "Riikka",
            "Ilmari",
        ),
        (
            "Häkkinen",
            "Korhonen",
            "Virtanen",
            "Mäkelä",
            "Järvinen",
            "Lehtonen",
            "Kallioniemi",
            "Heikkilä",
            "Savolainen",
            "Kettunen",
            "Ylönen",
            "Pääkkönen",
            "Hämäläinen",
            "Tuominen",
            "Väisänen",
            "Kivimäki",
            "Niskanen",
            "Peltoniemi",
        ),
    ),
    "indian": Origin(
        (
            "Aarav",
            "Ishita",
            "Vikram",
            "Meenakshi",
            "Arjun",
            "Lakshmi",
            "Rohan",
            "Ananya",
            "Siddharth",
            "Kavya",
            "Pranav",
            "Divya",
            "Rahul",
            "Nandini",
            "Karthik",
        ),
        (
            "Ramachandran",
            "Subramaniam",
            "Chattopadhyay",
            "Bhattacharya",
            "Krishnamurthy",
            "Iyengar",
            "Deshpande",
            "Mukherjee",
            "Raghunathan",
            "Gangopadhyay",
            "Kulkarni",
            "Chakraborty",
            "Venkatesan",
            "Sundaresan",
            "Balasubramanian",
            "Choudhury",
            "Thiruvengadam",
            "Menon",
        ),
    ),
    "arabic": Origin(
        (
            "Omar",
            "Yasmin",
            "Khalid",
            "Noor",
            "Tariq",
            "Samira",
            "Hamza",
            "Rania",
            "Youssef",
            "Amira",
            "Karim",
            "Dalia",
            "Bilal",
            "Huda",
            "Salma",
        ),
        (
            "Al-Masri",
            "Haddad",
            "Khoury",
            "Al-Farsi",
            "Mansour",
            "Nasrallah",
            "Al-Rashidi",
            "Barakat",
            "El-Sayed",
            "Hamdan",
            "Qasimi",
            "Al-Zahrani",
            "Tahan",
            "Bouazza",
            "Abdelrahman",
            "Al-Hashimi",
            "Saadeh",
            "Kanaan",
            "Shalhoub",
        ),
    ),
    "greek": Origin(
        (
            "Eleni",
            "Nikos",
            "Dimitra",
            "Giorgos",
            "Katerina",
            "Yannis",
            "Sofia",
            "Stavros",
            "Ioanna",
            "Kostas",
            "Despina",
            "Thanasis",
            "Vasiliki",
            "Petros",
            "Anastasia",
        ),
        (
            "Christodoulou",
            "Triantafyllou",
            "Chatzigeorgiou",
            "Oikonomou",
            "Papanikolaou",
            "Anagnostou",
            "Stylianou",
            "Theodorou",
            "Panagiotou",
            "Charalambous",
            "Kyriakou",
            "Pavlou",
            "Hadjipetrou",
            "Evangelou",
            "Athanasiou",
        ),
    ),
    "korean": Origin(
        (
            "Ji-woo",
            "Min-jun",
            "Seo-yeon",
            "Do-hyun",
            "Ha-eun",
            "Jae-won",
            "Su-bin",
            "Hyun-woo",
            "Yoon-seo",
            "Tae-yang",
            "Eun-ji",
            "Sung-min",
            "Da-eun",
            "Jun-ho",
            "Na-rae",
        ),
        (
            "Namgung",
            "Seonu",
            "Jegal",
            "Dokgo",
            "Sagong",
            "Hwang",
            "Baek",
            "Yoon",
            "Jang",
            "Kwon",
            "Ryu",
            "Jeon",
            "Heo",
            "Bong",
            "Seomun",
        ),
    ),
    "irish": Origin(
        (
            "Aoife",
            "Ciarán",
            "Siobhán",
            "Pádraig",
            "Niamh",
            "Oisín",
            "Gráinne",
            "Tadhg",
            "Róisín",
            "Cathal",
            "Saoirse",
            "Donnacha",
            "Orla",
            "Eoghan",
            "Clodagh",
        ),
        (
            "Ó Súilleabháin",
            "Mac Giolla Phádraig",
            "O'Driscoll",
            "McGillycuddy",
            "Ó Ceallaigh",
            "Cassidy",
            "Donoghue",
            "MacNamara",
            "Ó Dálaigh",
            "Breathnach",
            "Mulcahy",
            "Kavanagh",
            "Quinlivan",
            "Ó Muircheartaigh",
            "Delahunty",
            "Gallagher",
            "Ó Faoláin",
        ),
    ),
    "turkish": Origin(
        (
            "Elif",
            "Mehmet",
            "Zeynep",
            "Burak",
            "Ayşe",
            "Deniz",
            "Ozan",
            "Selin",
            "Kerem",
            "Ebru",
            "Cem",
            "Defne",
            "Barış",  # noqa: RUF001 (Turkish dotless i: the name's own spelling)
            "Gül",
            "Tuncay",
        ),
        (
            "Yıldırım",  # noqa: RUF001 (Turkish dotless i: the name's own spelling)
            "Karaosmanoğlu",
            "Çelik",
            "Kahraman",
            "Öztürk",
            "Şahin",
            "Hacıalioğlu",  # noqa: RUF001 (Turkish dotless i: the name's own spelling)
            "Tekinalp",
            "Gündoğdu",
            "Uzunköprülü",
            "Kocabıyık",  # noqa: RUF001 (Turkish dotless i: the name's own spelling)
            "Saraçoğlu",
            "Özdemir",
            "Erkan",
            "Yüksel",
        ),
    ),
    "hungarian": Origin(
        (
            "Zsófia",
            "Bence",
            "Réka",
            "Levente",
            "Eszter",
            "Gergely",
            "Dóra",
            "Ákos",
            "Noémi",
            "Csaba",
            "Krisztina",
            "Balázs",
            "Anikó",
            "Zoltán",
            "Ilona",
        ),
        (
            "Szőke",
            "Kertész",
            "Vásárhelyi",
            "Lakatos",
            "Fekete",
            "Pálffy",
            "Szentgyörgyi",
            "Hajdú",
            "Molnár",
            "Zsigmond",
            "Horváth",
            "Mészáros",
            "Farkas",
            "Csonka",
            "Szabados",
        ),
    ),
    "ghanaian": Origin(
        (
            "Kwame",
            "Ama",
            "Akosua",
            "Yaw",
            "Efua",
            "Kwabena",
            "Abena",
            "Kojo",
            "Adwoa",
            "Kwesi",
            "Esi",
            "Fiifi",
            "Afua",
            "Nana",
            "Yaa",
        ),
        (
            "Mensah",
            "Asante",
            "Boateng",
            "Owusu-Ansah",
            "Appiah",
            "Osei-Tutu",
            "Antwi",
            "Darko",
            "Frimpong",
            "Amoako",
            "Kyeremateng",
            "Acheampong",
            "Gyamfi",
            "Ofori-Atta",
            "Nkansah",
            "Bonsu",
        ),
    ),
    "mexican": Origin(
        (
            "Ximena",
            "Alejandro",
            "Guadalupe",
            "Itzel",
            "Emiliano",
            "Valentina",
            "Joaquín",
            "Renata",
            "Mateo",
            "Diego",
            "Citlali",
            "Paloma",
            "Andrés",
            "Marisol",
            "Eréndira",
        ),
        (
            "Villaseñor",
            "Zamudio",
            "Ocampo",
            "Echeverría",
            "Xicoténcatl",
            "Arreola",
            "Bustamante",
            "Quiroga",
            "Montemayor",
            "Zepeda",
            "Covarrubias",
            "Garduño",
            "Ibarra",
            "Sepúlveda",
            "Urquidi",
            "Anzaldúa",
        ),
        double_family=True,
    ),
    "vietnamese": Origin(
        (
            "Thi Lan",
            "Van Minh",
            "Quoc Bao",
            "Thi Thu Ha",
            "Minh Chau",
            "Duc Anh",
            "Ngoc Linh",
            "Thanh Hai",
            "Hong Nhung",
            "Gia Huy",
        ),
        ("Nguyen", "Pham", "Hoang", "Phan", "Dang", "Duong", "Truong", "Huynh", "Quach", "Vuong", "Luong", "Trieu"),
        family_first=True,
    ),
    "chinese": Origin(
        ("Meiling", "Zihan", "Yuxuan", "Haoran", "Xinyi", "Jiahui", "Wenjie", "Ruoxi", "Zhiyuan", "Yutong"),
        (
            "Sima",
            "Zhuge",
            "Shangguan",
            "Murong",
            "Dongfang",
            "Huangfu",
            "Situ",
            "Zhangsun",
            "Gongsun",
            "Zhao",
            "Qian",
            "Guo",
            "Liang",
            "Xie",
            "Tang",
        ),
        family_first=True,
    ),
}
ORIGIN_NAMES = tuple(ORIGINS)

FANTASY_GIVEN = (
    "Brannoc",
    "Eluned",
    "Torvald",
    "Isolde",
    "Caedmon",
    "Ysolde",
    "Garrick",
    "Merewen",
    "Alaric",
    "Sidrun",
    "Oswin",
    "Rhiannon",
    "Thane",
    "Ilse",
    "Corwen",
    "Maelis",
    "Dagny",
    "Ferran",
    "Hesper",
    "Joren",
    "Liessa",
    "Tamsin",
    "Varro",
    "Wenna",
)

# Syllables for coined names (planets, brands, stars, rivers...).
ONSETS = (
    "Ka",
    "Ve",
    "Tho",
    "Ri",
    "Za",
    "Mor",
    "El",
    "Qua",
    "Ys",
    "Dra",
    "Sel",
    "Vor",
    "Ny",
    "Os",
    "Ith",
    "Bel",
    "Cor",
    "Xa",
    "Ul",
    "Ae",
    "Tal",
    "Fen",
    "Gal",
    "Hal",
    "Ir",
    "Jor",
    "Lu",
    "Mi",
    "Nar",
    "Or",
    "Pra",
    "Sa",
    "Tor",
    "Va",
    "Wy",
    "Zi",
    "Ba",
    "Da",
    "Ke",
    "Le",
    "Ne",
    "Pe",
    "Sy",
    "Te",
    "Um",
)
MIDDLES = (
    "ra",
    "the",
    "li",
    "n",
    "ve",
    "sha",
    "ro",
    "mi",
    "ta",
    "ga",
    "lo",
    "ne",
    "ri",
    "va",
    "zu",
    "ke",
    "dri",
    "sto",
    "ma",
    "qui",
    "vel",
    "ssa",
    "rin",
    "da",
    "ko",
)
ENDINGS = (
    "a",
    "is",
    "on",
    "ar",
    "eth",
    "us",
    "ia",
    "or",
    "ix",
    "en",
    "ath",
    "ys",
    "um",
    "el",
    "ir",
    "ane",
    "ora",
    "ex",
    "ul",
    "ion",
    "ea",
    "in",
)

# Towns in three styles: English-like compounds, Nordic compounds, Mediterranean compounds.
TOWN_HEADS = (
    "Brack",
    "Dun",
    "Esk",
    "Gorse",
    "Kel",
    "Lind",
    "Quill",
    "Rav",
    "Tarn",
    "Ulm",
    "Yar",
    "Carn",
    "Fal",
    "Holl",
    "Ird",
    "Mell",
    "Orm",
    "Pell",
    "Sel",
    "Vell",
    "Briar",
    "Cask",
    "Dray",
    "Fenn",
    "Grim",
    "Hask",
    "Jor",
    "Lorn",
    "Marl",
    "Nett",
    "Oss",
    "Pryd",
    "Rill",
    "Sorn",
    "Tull",
    "Umber",
    "Wex",
    "Bram",
    "Coll",
    "Ebb",
    "Garr",
    "Hind",
    "Knap",
    "Loch",
    "Mord",
    "Nith",
    "Poll",
    "Rook",
    "Stave",
    "Whit",
)
TOWN_TAILS = (
    "wold",
    "marrow",
    "combe",
    "holm",
    "moor",
    "stead",
    "wick",
    "mere",
    "hithe",
    "ness",
    "garth",
    "thwaite",
    "den",
    "fell",
    "haven",
    "worth",
    "ley",
    "bridge",
    "stow",
    "cote",
    "burgh",
    "shaw",
    "well",
    "hope",
    "sett",
)
NORDIC_HEADS = (
    "Skar",
    "Fjell",
    "Brek",
    "Hval",
    "Stor",
    "Lyng",
    "Ulv",
    "Tind",
    "Krå",
    "Sol",
    "Myr",
    "Rau",
    "Eik",
    "Vinter",
    "Grå",
    "Hav",
)
NORDIC_TAILS = ("vik", "nes", "dal", "heim", "sund", "berg", "fjord", "stad", "voll", "øy", "strand", "by")
SOUTH_HEADS = ("Valle", "Monte", "Castel", "Porto", "Villa", "Borgo", "Rocca", "Pieve", "Serra", "Torre")
SOUTH_TAILS = (
    "verde",
    "lupo",
    "rosso",
    "mare",
    "fiore",
    "chiaro",
    "nero",
    "alto",
    "sereno",
    "oscuro",
    "bruno",
    "dorato",
)
TOWN_PREFIXES = ("Port ", "Upper ", "Lower ", "East ", "West ", "North ", "South ", "Old ")

RIVER_HEADS = (
    "Kel",
    "Gjel",
    "Ost",
    "Var",
    "Ams",
    "Tor",
    "Lun",
    "Sev",
    "Ard",
    "Wyn",
    "Mel",
    "Dov",
    "Isk",
    "Bren",
    "Cal",
    "Ytt",
    "Ner",
    "Aun",
    "Shal",
    "Evan",
)
RIVER_TAILS = ("da", "ra", "wen", "ey", "ith", "ach", "ore", "une", "an", "is", "ell", "ova", "ent", "ava")

ORG_HEADS = (
    "Bright",
    "Cold",
    "Ash",
    "Iron",
    "Silver",
    "Amber",
    "Heron",
    "Wren",
    "Oak",
    "Stone",
    "Fern",
    "Glen",
    "Marsh",
    "North",
    "Red",
    "Thorn",
    "Willow",
    "Copper",
    "Raven",
    "Falcon",
    "Larch",
    "Bramble",
    "Cedar",
    "Birch",
    "Hazel",
    "Flint",
    "Moss",
    "Sable",
    "Tide",
    "Frost",
    "Linden",
    "Swan",
    "Briar",
    "Quartz",
    "Lark",
    "Otter",
)
ORG_TAILS = (
    "moor",
    "field",
    "gate",
    "wick",
    "brook",
    "ridge",
    "haven",
    "stead",
    "ford",
    "mere",
    "worth",
    "dale",
    "holm",
    "crest",
    "wood",
    "fell",
    "bury",
    "ley",
    "point",
    "line",
    "mark",
    "well",
    "vale",
    "stone",
)
INDUSTRIES = (
    "Analytics",
    "Logistics",
    "Robotics",
    "Biotech",
    "Foods",
    "Press",
    "Instruments",
    "Energy",
    "Textiles",
    "Pharmaceuticals",
    "Software",
    "Mobility",
    "Insurance",
    "Holdings",
    "Labs",
    "Systems",
    "Materials",
    "Ceramics",
    "Aerospace",
    "Optics",
    "Shipping",
    "Brewing",
    "Games",
    "Studios",
    "Capital",
    "Partners",
    "Health",
    "Networks",
    "Semiconductors",
    "Cosmetics",
    "Furniture",
    "Acoustics",
    "Hydraulics",
    "Seeds",
    "Outfitters",
)

WORDS = (
    "Lantern",
    "Juniper",
    "Cobble",
    "Thistle",
    "Saltire",
    "Meadow",
    "Harbour",
    "Kingfisher",
    "Orchard",
    "Pebble",
    "Beacon",
    "Clover",
    "Marigold",
    "Quayside",
    "Rosehip",
    "Starling",
    "Tamarind",
    "Wildflower",
    "Hawthorn",
    "Larkspur",
    "Moorland",
    "Nettle",
    "Primrose",
    "Riverbank",
    "Seaview",
    "Teasel",
    "Upland",
    "Bluebell",
    "Foxglove",
    "Greenfinch",
    "Heather",
    "Ivybridge",
    "Mulberry",
    "Oakapple",
    "Pinecone",
    "Sandpiper",
    "Tidepool",
    "Violet",
    "Woodlark",
    "Yarrow",
    "Bracken",
    "Cinnabar",
    "Damson",
    "Elderberry",
    "Goldcrest",
    "Honeysuckle",
    "Lavender",
    "Marram",
    "Peregrine",
    "Redwing",
    "Samphire",
    "Whinberry",
)

STREET_WORDS = (
    "Quince",
    "Cooper",
    "Saddler",
    "Pewter",
    "Chandler",
    "Weaver",
    "Tanner",
    "Almond",
    "Barley",
    "Flax",
    "Linden",
    "Mallow",
    "Rook",
    "Thimble",
    "Bellfounder",
    "Cordwainer",
    "Hopyard",
    "Ropewalk",
    "Glover",
    "Malthouse",
    "Pilgrim",
    "Candlewick",
    "Ferrier",
    "Wheelwright",
)
STREET_TYPES = ("Row", "Lane", "Street", "Walk", "Yard", "Terrace", "Close", "Parade", "Mews", "Hill")

CITIES = (
    "Aarhus",
    "Bilbao",
    "Gdańsk",
    "Turin",
    "Rotterdam",
    "Gothenburg",
    "Bergen",
    "Leipzig",
    "Graz",
    "Brno",
    "Cork",
    "Galway",
    "Tartu",
    "Plovdiv",
    "Izmir",
    "Pune",
    "Cebu",
    "Da Nang",
    "Sapporo",
    "Fukuoka",
    "Kaohsiung",
    "Chiang Mai",
    "Curitiba",
    "Recife",
    "Valparaíso",
    "Guadalajara",
    "Monterrey",
    "Calgary",
    "Halifax",
    "Winnipeg",
    "Adelaide",
    "Perth",
    "Hobart",
    "Christchurch",
    "Dunedin",
    "Kumasi",
    "Mombasa",
    "Durban",
    "Marrakesh",
    "Alexandria",
    "Tbilisi",
    "Almaty",
    "Tashkent",
    "Lahore",
    "Kochi",
    "Mysuru",
    "Chennai",
    "Kandy",
    "Bandung",
    "Oulu",
    "Uppsala",
    "Odense",
    "Trondheim",
    "Bruges",
    "Lausanne",
    "Innsbruck",
    "Lucerne",
    "Bologna",
    "Genoa",
    "Valencia",
    "Málaga",
    "Lille",
    "Toulouse",
    "Antwerp",
    "Utrecht",
    "Eindhoven",
    "Poznań",
    "Debrecen",
    "Cluj-Napoca",
    "Thessaloniki",
    "Montevideo",
    "Quito",
)

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Relatives and teams for the first-person ("personal") facts.
RELATIVES = (
    "mother",
    "father",
    "sister",
    "brother",
    "grandmother",
    "grandfather",
    "aunt",
    "uncle",
    "cousin",
    "wife",
    "husband",
    "partner",
    "son",
    "daughter",
    "niece",
    "nephew",
    "best friend",
    "flatmate",
    "neighbour",
    "boss",
    "stepfather",
    "stepmother",
    "godmother",
    "godfather",
    "mother-in-law",
    "father-in-law",
    "sister-in-law",
    "brother-in-law",
    "grandson",
    "granddaughter",
    "girlfriend",
    "boyfriend",
)
CHILDREN = (
    "son",
    "daughter",
    "niece",
    "nephew",
    "grandson",
    "granddaughter",
    "godson",
    "goddaughter",
    "stepson",
    "stepdaughter",
    "little brother",
    "little sister",
)
TEAMS = (
    "design",
    "sales",
    "marketing",
    "data",
    "support",
    "finance",
    "legal",
    "platform",
    "mobile",
    "research",
    "QA",
    "infrastructure",
    "security",
    "product",
    "analytics",
    "frontend",
    "payments",
    "growth",
    "docs",
)


# =============================================================================================
# Generation helpers
# =============================================================================================


def cap(text: str) -> str:
    """Upper-case the first character only ("the Otters" -> "The Otters")."""
    return text[:1].upper() + text[1:]


def number(n: int) -> str:
    """Digits, with thousands separators from 10,000 up (as people write "950", "4120", "48,300")."""
    return f"{n:,}" if n >= 10_000 else str(n)


def with_article(phrase: str) -> str:
    """``phrase`` with "a" or "an" ("an orbital city")."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def possessive(phrase: str) -> str:
    """The possessive of a singular phrase ("my aunt" -> "my aunt's")."""
    return phrase + "'s"


class Gen:
    """Random building blocks, all drawn from one seeded ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # -- generic -----------------------------------------------------------------------------
    def choice(self, items: Sequence[str]) -> str:
        """One item of ``items``."""
        return self.rng.choice(items)

    def randint(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return self.rng.randint(lo, hi)

    def coined(self, parts: int = 2) -> str:
        """An invented proper name from syllables ("Kethra", "Oromion"); at least five letters, as
        shorter ones are often English words ("Says", "Keen")."""
        while True:
            middle = "".join(self.rng.choice(MIDDLES) for _ in range(parts - 2))
            name = self.rng.choice(ONSETS) + middle + self.rng.choice(ENDINGS)
            if len(name) >= 5:
                return name

    def coined_word(self, min_length: int = 5) -> str:
        """A lower-case invented common noun ("vessik") long enough not to be an English word."""
        while True:
            word = self.coined(self.rng.choice((2, 3))).lower()
            if len(word) >= min_length:
                return word

    def letters(self, n: int, alphabet: str = "ABCDEFGHJKLMNPRSTVWXYZ") -> str:
        """``n`` random capital letters (no easily confused I, O, Q, U by default)."""
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def digits(self, n: int) -> str:
        """``n`` random digits (leading zeros allowed)."""
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    # -- people ------------------------------------------------------------------------------
    def person(self) -> tuple[str, str]:
        """(full name, family name): the family name is the target, as in the evaluation set."""
        origin = ORIGINS[self.rng.choice(ORIGIN_NAMES)]
        given = self.rng.choice(origin.given)
        family = self.rng.choice(origin.family)
        if origin.family_first:
            return f"{family} {given}", family
        if origin.double_family and self.rng.random() < 0.35:
            middle = self.rng.choice([f for f in origin.family if f != family])
            return f"{given} {middle} {family}", family
        return f"{given} {family}", family

    def fantasy_person(self) -> tuple[str, str]:
        """(full name, family name) for a fantasy character."""
        family = self.coined(2)
        return f"{self.rng.choice(FANTASY_GIVEN)} {family}", family

    # -- places and organisations ------------------------------------------------------------
    def town(self) -> str:
        """An invented town name in one of three styles, sometimes with a prefix ("Port", "Upper")."""
        style = self.rng.random()
        if style < 0.6:
            name = self.rng.choice(TOWN_HEADS) + self.rng.choice(TOWN_TAILS)
        elif style < 0.8:
            name = self.rng.choice(NORDIC_HEADS) + self.rng.choice(NORDIC_TAILS)
        else:
            name = self.rng.choice(SOUTH_HEADS) + self.rng.choice(SOUTH_TAILS)
        if self.rng.random() < 0.12:
            name = self.rng.choice(TOWN_PREFIXES) + name
        return name

    def river(self) -> str:
        """An invented river name ("Kelda")."""
        return self.rng.choice(RIVER_HEADS) + self.rng.choice(RIVER_TAILS)

    def compound(self) -> str:
        """An invented compound word used in organisation and place names ("Brightmoor")."""
        return self.rng.choice(ORG_HEADS) + self.rng.choice(ORG_TAILS)

    def org(self) -> str:
        """An invented organisation name ("Brightmoor Analytics", "Mensah-Korhonen Labs")."""
        style = self.rng.random()
        if style < 0.5:
            return f"{self.compound()} {self.rng.choice(INDUSTRIES)}"
        if style < 0.75:
            return f"{self.coined(2)} {self.rng.choice(INDUSTRIES)}"
        if style < 0.9:
            first, second = self.short_family(), self.short_family()
            if first != second:
                return f"{first}-{second} {self.rng.choice(INDUSTRIES)}"
        return f"{self.short_family()} & {self.compound()}"

    def law_firm(self) -> str:
        """A law firm named after two different partners ("Mensah & Korhonen")."""
        first, second = self.short_family(), self.short_family()
        while second == first:
            second = self.short_family()
        return f"{first} & {second}"

    def short_family(self) -> str:
        """A one-word family name (for firm names such as "Mensah & Korhonen")."""
        while True:
            origin = ORIGINS[self.rng.choice(ORIGIN_NAMES)]
            family = self.rng.choice(origin.family)
            if " " not in family:
                return family

    def word(self) -> str:
        """A descriptive word for venue names ("Juniper", "Seaview")."""
        return self.rng.choice(WORDS)

    # -- numbers, dates, times ---------------------------------------------------------------
    def magnitude(self, lo: int, hi: int) -> int:
        """A count spread over orders of magnitude between lo and hi, rounded like real figures."""
        exponent = self.rng.uniform(len(str(lo)) - 1, len(str(hi)) - 1 + 0.999)
        n = int(10**exponent)
        n = max(lo, min(hi, n))
        if n >= 10_000:
            n = round(n, -2)
        elif n >= 2_000 and self.rng.random() < 0.6:
            n = round(n, -1)
        return n

    def clock(self, hour_lo: int, hour_hi: int) -> str:
        """A clock time between ``hour_lo`` and ``hour_hi`` o'clock ("9:15")."""
        return f"{self.randint(hour_lo, hour_hi)}:{self.choice(('00', '10', '15', '20', '30', '40', '45', '50'))}"

    def price(self, lo: float, hi: float) -> str:
        """A price with two decimals between ``lo`` and ``hi`` ("3.40")."""
        cents = self.randint(int(lo * 10), int(hi * 10)) * 10
        return f"{cents // 100}.{cents % 100:02d}"

    def day(self) -> str:
        """A day of the month."""
        return str(self.randint(1, 28))


# =============================================================================================
# Templates for invented facts
# =============================================================================================


@dataclass(frozen=True)
class Subject:
    """The entity a fact is about: ``name`` is the ``subject`` field, ``ref`` how sentences say it."""

    name: str
    ref: str
    slots: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Value:
    """The new fact: ``phrase`` is written in the statement and contains ``target``."""

    phrase: str
    target: str
    slots: Mapping[str, str] = field(default_factory=dict)


def subj(name: str, ref: str | None = None, **slots: str) -> Subject:
    """A subject referred to by its bare name (or by ``ref``), with extra template slots."""
    return Subject(name, ref if ref is not None else name, slots)


def the(name: str, **slots: str) -> Subject:
    """A subject that sentences introduce with "the" ("the Dunmere Otters")."""
    return Subject(name, "the " + name, slots)


def val(phrase: str, target: str | None = None, **slots: str) -> Value:
    """A value whose target is the whole phrase unless ``target`` is given."""
    return Value(phrase, target if target is not None else phrase, slots)


def person_val(g: Gen, title: str = "") -> Value:
    """A person as the value: the statement names them, the target is the family name."""
    full, family = g.person()
    return val(title + full, family)


@dataclass(frozen=True)
class Template:
    """One relation: statement phrasings, question phrasings and how to fill them.

    Format fields: ``{ref}`` (the subject as used in a sentence), ``{value}`` (statement only),
    plus any slot the subject or value maker returns.
    """

    name: str
    category: str
    statements: tuple[str, ...]
    questions: tuple[str, ...]
    subject: Callable[[Gen], Subject]
    value: Callable[[Gen], Value] | SubjectDependent

    def __post_init__(self) -> None:
        if not 2 <= len(self.statements) <= 3 or len(self.questions) < 3:
            msg = f"template {self.name}: needs 2-3 statements and 3+ questions"
            raise ValueError(msg)
        if any("{value}" in q for q in self.questions) or any("{value}" not in s for s in self.statements):
            msg = f"template {self.name}: {{value}} belongs in every statement and no question"
            raise ValueError(msg)


def T(
    name: str,
    category: str,
    statements: Iterable[str],
    questions: Iterable[str],
    subject: Callable[[Gen], Subject],
    value: Callable[[Gen], Value] | SubjectDependent,
) -> Template:
    """Shorthand constructor for :class:`Template`."""
    return Template(name, category, tuple(statements), tuple(questions), subject, value)


# ---- person_role -----------------------------------------------------------------------------
SPORT_MASCOTS = (
    "Otters",
    "Falcons",
    "Badgers",
    "Herons",
    "Wolves",
    "Stags",
    "Kites",
    "Ospreys",
    "Foxes",
    "Lynxes",
    "Ravens",
    "Hornets",
    "Mariners",
    "Rovers",
    "Comets",
    "Pilots",
)
NOVEL_ADJ = (
    "Salt",
    "Silent",
    "Amber",
    "Hollow",
    "Paper",
    "Winter",
    "Copper",
    "Borrowed",
    "Drowned",
    "Quiet",
    "Painted",
    "Glass",
    "Lantern",
    "Velvet",
    "Iron",
    "Distant",
    "Burning",
    "Folded",
)
NOVEL_NOUN = (
    "Orchard",
    "Harbour",
    "Cartographer",
    "Daughters",
    "Lighthouse",
    "Ledger",
    "Weather",
    "Archive",
    "Embassy",
    "Choir",
    "Tides",
    "Meridian",
    "Garden",
    "Ferryman",
    "Almanac",
    "Season",
    "Observatory",
)
SCHOOL_KINDS = ("Academy", "Grammar School", "Primary School", "High School", "Lyceum", "Sixth Form College")
ORCHESTRA_KINDS = ("Symphony Orchestra", "Philharmonic Orchestra", "Chamber Orchestra", "Festival Orchestra")
PAPER_KINDS = ("Gazette", "Courier", "Herald", "Chronicle", "Post", "Sentinel", "Examiner", "Observer", "Echo")
HOSPITAL_KINDS = (
    "General Hospital",
    "Royal Infirmary",
    "Children's Hospital",
    "University Hospital",
    "District Hospital",
)

PERSON_ROLE = [
    T(
        "ceo",
        "person_role",
        ["The CEO of {ref} is {value}.", "{value} runs {ref} as chief executive.", "{ref} is led by CEO {value}."],
        [
            "Who is the CEO of {ref}?",
            "Who leads {ref} as its chief executive?",
            "Which person heads {ref}?",
            "Who is the chief executive of {ref}?",
        ],
        lambda g: subj(g.org()),
        person_val,
    ),
    T(
        "mayor",
        "person_role",
        [
            "The mayor of {ref} is {value}.",
            "{value} was elected mayor of {ref} in {year}.",
            "{ref} is governed by its mayor, {value}.",
        ],
        ["Who is the mayor of {ref}?", "Who did {ref} elect as its mayor?", "Who governs the town of {ref}?"],
        lambda g: subj(g.town(), year=str(g.randint(2015, 2031))),
        person_val,
    ),
    T(
        "head_coach",
        "person_role",
        ["{value} is the head coach of {ref}.", "{ref} are coached by {value}.", "The head coach of {ref} is {value}."],
        ["Who coaches {ref}?", "Who is the head coach of {ref}?", "Which person trains {ref} as head coach?"],
        lambda g: the(f"{g.town()} {g.choice(SPORT_MASCOTS)}"),
        person_val,
    ),
    T(
        "novel_author",
        "person_role",
        ["The novel {ref} was written by {value}.", "{value} wrote the novel {ref}.", "{ref} is a novel by {value}."],
        ["Who wrote the novel {ref}?", "Who is the author of {ref}?", "Which writer wrote the book {ref}?"],
        lambda g: subj(f"The {g.choice(NOVEL_ADJ)} {g.choice(NOVEL_NOUN)}"),
        person_val,
    ),
    T(
        "principal",
        "person_role",
        [
            "The principal of {ref} is {value}.",
            "{value} serves as principal of {ref}.",
            "{ref} is run by its principal, {value}.",
        ],
        [
            "Who is the principal of {ref}?",
            "Who runs {ref} as head of the school?",
            "Which person is in charge of {ref}?",
        ],
        lambda g: subj(f"{g.town()} {g.choice(SCHOOL_KINDS)}"),
        person_val,
    ),
    T(
        "conductor",
        "person_role",
        [
            "{value} is the principal conductor of {ref}.",
            "The principal conductor of {ref} is {value}.",
            "{ref} performs under its principal conductor, {value}.",
        ],
        ["Who is the principal conductor of {ref}?", "Who conducts {ref}?", "Which conductor leads {ref}?"],
        lambda g: the(f"{g.town()} {g.choice(ORCHESTRA_KINDS)}"),
        person_val,
    ),
    T(
        "editor",
        "person_role",
        [
            "The editor-in-chief of {ref} is {value}.",
            "{value} edits {ref} as editor-in-chief.",
            "{ref} has {value} as its editor-in-chief.",
        ],
        ["Who is the editor-in-chief of {ref}?", "Who edits {ref}?", "Which journalist runs {ref} as chief editor?"],
        lambda g: the(f"{g.town()} {g.choice(PAPER_KINDS)}"),
        person_val,
    ),
    T(
        "chief_surgeon",
        "person_role",
        [
            "{value} is the chief surgeon at {ref}.",
            "The chief surgeon at {ref} is {value}.",
            "{ref} has {value} as its chief surgeon.",
        ],
        [
            "Who is the chief surgeon at {ref}?",
            "Which doctor heads the surgical team at {ref}?",
            "Who leads surgery at {ref}?",
        ],
        lambda g: subj(f"{g.town()} {g.choice(HOSPITAL_KINDS)}"),
        lambda g: person_val(g, "Dr. "),
    ),
]

# ---- organisation ----------------------------------------------------------------------------
PRODUCT_LINES = (
    ("folding kayaks", "kayaks"),
    ("hearing aids", "hearing aids"),
    ("industrial dehumidifiers", "dehumidifiers"),
    ("ceramic water filters", "water filters"),
    ("pipe organs", "pipe organs"),
    ("smart beehive monitors", "beehive monitors"),
    ("wooden toy trains", "toy trains"),
    ("solar street lights", "street lights"),
    ("carbon bicycle frames", "bicycle frames"),
    ("hospital beds", "hospital beds"),
    ("weather balloons", "weather balloons"),
    ("tidal turbines", "tidal turbines"),
    ("mechanical wristwatches", "wristwatches"),
    ("espresso grinders", "espresso grinders"),
    ("greenhouse sensors", "greenhouse sensors"),
    ("sailcloth", "sailcloth"),
    ("braille printers", "braille printers"),
    ("fire-resistant paint", "fire-resistant paint"),
    ("cargo e-bikes", "cargo e-bikes"),
    ("vending machines", "vending machines"),
    ("insulin pens", "insulin pens"),
    ("climbing ropes", "climbing ropes"),
    ("frozen dumplings", "dumplings"),
    ("oat milk", "oat milk"),
    ("typewriter ribbons", "ribbons"),
    ("church bells", "church bells"),
    ("drip irrigation kits", "drip irrigation"),
    ("microscope lenses", "microscope lenses"),
    ("rooftop tents", "rooftop tents"),
    ("heat pumps", "heat pumps"),
    ("sea salt", "sea salt"),
    ("chess clocks", "chess clocks"),
)
LAW_FIELDS = (
    "tax",
    "employment",
    "family",
    "patent",
    "immigration",
    "aviation",
    "construction",
    "insolvency",
    "competition",
    "media",
    "environmental",
    "shipping",
    "pension",
    "copyright",
    "energy",
    "sports",
)
FLAGSHIP_A = (
    "Ember",
    "Cinder",
    "Harbour",
    "North",
    "Quiet",
    "Silver",
    "Tidal",
    "Lumen",
    "Velvet",
    "Granite",
    "Morning",
    "Falcon",
    "Glacier",
    "Meadow",
    "Comet",
    "Saffron",
    "Hollow",
    "Sparrow",
)
FLAGSHIP_B = (
    "Lantern",
    "Anchor",
    "Compass",
    "Beacon",
    "Kettle",
    "Ridge",
    "Drift",
    "Arrow",
    "Loom",
    "Ember",
    "Crown",
    "Spindle",
    "Pulse",
    "Harvest",
    "Echo",
    "Keel",
)

ORGANISATION = [
    T(
        "headquarters",
        "organisation",
        [
            "{ref} is headquartered in {value}.",
            "{ref} has its head office in {value}.",
            "The headquarters of {ref} are in {value}.",
        ],
        [
            "Where is {ref} headquartered?",
            "In which city does {ref} have its head office?",
            "Which city is home to the headquarters of {ref}?",
        ],
        lambda g: subj(g.org()),
        lambda g: val(g.choice(CITIES)),
    ),
    T(
        "founding_year",
        "organisation",
        ["{ref} was founded in {value}.", "{ref} was established in {value}.", "In {value}, {ref} was founded."],
        ["In what year was {ref} founded?", "When was {ref} established?", "In which year did {ref} come into being?"],
        lambda g: subj(g.org()),
        lambda g: val(str(g.randint(1840, 2022))),
    ),
    T(
        "founder",
        "organisation",
        ["{ref} was founded by {value}.", "{value} founded {ref}.", "{value} set up {ref} in {year}."],
        ["Who founded {ref}?", "Which person set up {ref}?", "Who is the founder of {ref}?"],
        lambda g: subj(g.org(), year=str(g.randint(1880, 2021))),
        person_val,
    ),
    T(
        "employees",
        "organisation",
        ["{ref} has {value} employees.", "{ref} employs {value} people.", "There are {value} people working at {ref}."],
        ["How many employees does {ref} have?", "How many people work at {ref}?", "What is the headcount of {ref}?"],
        lambda g: subj(g.org()),
        lambda g: val(number(g.magnitude(12, 48_000))),
    ),
    T(
        "main_product",
        "organisation",
        [
            "{ref} mainly makes {value}.",
            "The main product line of {ref} is {value}.",
            "{ref} is best known for its {value}.",
        ],
        [
            "What does {ref} mainly make?",
            "What is the main product of {ref}?",
            "What is {ref} best known for producing?",
        ],
        lambda g: subj(g.org()),
        lambda g: val(*g.rng.choice(PRODUCT_LINES)),
    ),
    T(
        "flagship",
        "organisation",
        [
            "{ref}'s flagship product is called the {value}.",
            "The flagship product of {ref} is the {value}.",
            "The {value} is the flagship product of {ref}.",
        ],
        [
            "What is the flagship product of {ref} called?",
            "What is the name of {ref}'s flagship product?",
            "Which product is {ref} best known for?",
        ],
        lambda g: subj(g.org()),
        lambda g: val(f"{g.choice(FLAGSHIP_A)} {g.choice(FLAGSHIP_B)}"),
    ),
    T(
        "law_firm",
        "organisation",
        [
            "{ref} is a law firm that specialises in {value} law.",
            "The law firm {ref} focuses on {value} law.",
            "{ref}, a law firm in {city}, specialises in {value} law.",
        ],
        [
            "What area of law does {ref} specialise in?",
            "Which legal field is the firm {ref} known for?",
            "What kind of law does {ref} mostly practise?",
        ],
        lambda g: subj(g.law_firm(), city=g.choice(CITIES)),
        lambda g: val(g.choice(LAW_FIELDS)),
    ),
]

# ---- place -----------------------------------------------------------------------------------
RANGE_KINDS = ("Range", "Hills", "Mountains", "Fells", "Highlands")
BUILDING_KINDS = ("Building", "Tower", "House", "Exchange", "Centre")
BRIDGE_STYLES = ("Bridge", "Footbridge", "Swing Bridge", "Toll Bridge")

PLACE = [
    T(
        "population",
        "place",
        [
            "The town of {ref} has a population of {value}.",
            "{ref} is home to {value} people.",
            "{value} people live in {ref}.",
        ],
        ["What is the population of {ref}?", "How many people live in {ref}?", "How many inhabitants does {ref} have?"],
        lambda g: subj(g.town()),
        lambda g: val(number(g.magnitude(120, 250_000))),
    ),
    T(
        "river",
        "place",
        [
            "The river that runs through {ref} is called the {value}.",
            "{ref} lies on the River {value}.",
            "The {value} flows through the middle of {ref}.",
        ],
        [
            "Which river runs through {ref}?",
            "What is the name of the river flowing through {ref}?",
            "On which river does {ref} lie?",
        ],
        lambda g: subj(g.town()),
        lambda g: val(g.river()),
    ),
    T(
        "twin_town",
        "place",
        [
            "{ref} is twinned with {value}.",
            "The twin town of {ref} is {value}.",
            "{ref} and {value} became twin towns in {year}.",
        ],
        ["Which town is {ref} twinned with?", "What is the twin town of {ref}?", "Which town is the twin of {ref}?"],
        lambda g: subj(g.town(), year=str(g.randint(1950, 2020))),
        lambda g: val(g.town()),
    ),
    T(
        "main_square",
        "place",
        [
            "The main square of {ref} is called {value} Square.",
            "{value} Square is the central square of {ref}.",
            "Everyone in {ref} meets in {value} Square, the main square.",
        ],
        [
            "What is the main square of {ref} called?",
            "What name does the central square in {ref} go by?",
            "What is the name of the main square in {ref}?",
        ],
        lambda g: subj(g.town()),
        lambda g: val(g.choice(STREET_WORDS)),
    ),
    T(
        "tallest_peak",
        "place",
        [
            "Mount {value} is the tallest peak in {ref}.",
            "The tallest peak in {ref} is Mount {value}.",
            "{ref} reach their highest point at Mount {value}.",
        ],
        [
            "What is the tallest peak in {ref}?",
            "Which mountain is the highest in {ref}?",
            "What is the highest point of {ref}?",
        ],
        lambda g: the(f"{g.coined(2)} {g.choice(RANGE_KINDS)}"),
        lambda g: val(g.coined(2)),
    ),
    T(
        "lake_depth",
        "place",
        [
            "{ref} is {value} metres deep at its deepest point.",
            "The maximum depth of {ref} is {value} metres.",
            "At its deepest, {ref} reaches {value} metres.",
        ],
        [
            "How deep is {ref}?",
            "What is the maximum depth of {ref} in metres?",
            "How many metres deep is {ref} at its deepest?",
        ],
        lambda g: subj(f"Lake {g.coined(2)}"),
        lambda g: val(str(g.randint(9, 480))),
    ),
    T(
        "floors",
        "place",
        [
            "{ref} on {street} has {value} floors.",
            "{ref} is {value} storeys tall.",
            "There are {value} floors in {ref}.",
        ],
        [
            "How many floors does {ref} have?",
            "How many storeys tall is {ref}?",
            "What is the number of floors in {ref}?",
        ],
        lambda g: the(
            f"{g.short_family()} {g.choice(BUILDING_KINDS)}",
            street=f"{g.choice(STREET_WORDS)} {g.choice(STREET_TYPES)}",
        ),
        lambda g: val(str(g.randint(4, 88))),
    ),
    T(
        "bridge_length",
        "place",
        [
            "{ref} in {town} is {value} metres long.",
            "The length of {ref} in {town} is {value} metres.",
            "{ref}, which crosses the river at {town}, is {value} metres long.",
        ],
        [
            "How long is {ref} in {town}?",
            "What is the length of {ref} in {town}?",
            "How many metres long is {ref} at {town}?",
        ],
        lambda g: the(f"{g.short_family()} {g.choice(BRIDGE_STYLES)}", town=g.town()),
        lambda g: val(str(g.randint(40, 2400))),
    ),
    T(
        "library_address",
        "place",
        [
            "{ref} is at {number} {value}.",
            "You will find {ref} at number {number}, {value}.",
            "The address of {ref} is {number} {value}.",
        ],
        ["What is the address of {ref}?", "Where is {ref} located?", "On which street is {ref}?"],
        lambda g: the(
            f"{g.town()} {g.choice(('Community Library', 'Public Library', 'Reading Room', 'Record Office'))}",
            number=str(g.randint(1, 140)),
        ),
        lambda g: val(f"{g.choice(STREET_WORDS)} {g.choice(STREET_TYPES)}"),
    ),
]

# ---- number ----------------------------------------------------------------------------------
CAFE_KINDS = ("{w} Café", "Café {w}", "{w} Bakery", "{w} Deli", "{w} Tearoom", "{w} Coffee House")
MUSEUM_KINDS = ("{t} Museum", "{t} Heritage Centre", "{t} Maritime Museum", "{t} Toy Museum", "{w} Gallery")
TRANSIT_KINDS = ("tram", "funicular", "metro", "water bus", "cable car", "shuttle bus")
PATH_KINDS = ("cycle path", "hiking trail", "canal towpath", "coastal path", "pilgrim route")
VENUE_KINDS = ("{t} Stadium", "{w} Park", "{t} Arena", "{t} Velodrome")
ANIMALS = ("sheep", "goats", "dairy cows", "hens", "alpacas", "pigs", "ducks", "beehives", "llamas", "geese")
CLUB_KINDS = (
    "Rowing Club",
    "Hiking Society",
    "Choral Society",
    "Cycling Club",
    "Photography Club",
    "Astronomy Society",
    "Gardening Club",
    "Fencing Club",
    "Bridge Club",
)
GYM_KINDS = ("{w} Gym", "{w} Climbing Wall", "{w} Fitness Club", "{w} Yoga Studio", "{w} Boxing Gym")
CURRENCIES = ("euros", "dollars", "francs", "pounds")


def place_name(g: Gen, patterns: Sequence[str]) -> str:
    """A venue name from patterns with ``{w}`` (a word) and ``{t}`` (a town)."""
    return g.choice(patterns).format(w=g.word(), t=g.town())


NUMBER = [
    T(
        "opening_time",
        "number",
        [
            "{ref} opens at {value} every morning.",
            "Every morning, {ref} opens its doors at {value}.",
            "The doors of {ref} open at {value} each morning.",
        ],
        [
            "What time does {ref} open?",
            "When does {ref} open its doors in the morning?",
            "At what time does {ref} start serving in the morning?",
        ],
        lambda g: subj(place_name(g, CAFE_KINDS)),
        lambda g: val(g.clock(6, 9)),
    ),
    T(
        "closing_time",
        "number",
        [
            "{ref} closes at {value} pm on weekdays.",
            "On weekdays, {ref} shuts at {value} pm.",
            "Weekday closing time at {ref} is {value} pm.",
        ],
        [
            "What time does {ref} close on weekdays?",
            "Until what time is {ref} open from Monday to Friday?",
            "When does {ref} shut on weekdays?",
        ],
        lambda g: the(place_name(g, MUSEUM_KINDS)),
        lambda g: val(g.clock(4, 8)),
    ),
    T(
        "ticket_price",
        "number",
        [
            "A single ticket on {ref} costs {value} {currency}.",
            "One ride on {ref} costs {value} {currency}.",
            "{ref} charges {value} {currency} for a single ticket.",
        ],
        [
            "How much does a single ticket on {ref} cost?",
            "What is the fare for one ride on {ref}?",
            "What does {ref} charge for a single ticket?",
        ],
        lambda g: the(f"{g.town()} {g.choice(TRANSIT_KINDS)}", currency=g.choice(CURRENCIES)),
        lambda g: val(g.price(0.8, 7.9)),
    ),
    T(
        "path_length",
        "number",
        [
            "{ref} is {value} kilometres long.",
            "{ref} runs for {value} kilometres.",
            "Along its whole length, {ref} covers {value} kilometres.",
        ],
        ["How long is {ref}?", "What distance does {ref} cover?", "How many kilometres long is {ref}?"],
        lambda g: the(f"{g.town()} {g.choice(PATH_KINDS)}"),
        lambda g: val(str(g.randint(4, 260))),
    ),
    T(
        "stadium_capacity",
        "number",
        [
            "{ref} holds {value} spectators.",
            "{ref} has a capacity of {value} spectators.",
            "Up to {value} spectators fit inside {ref}.",
        ],
        [
            "How many spectators does {ref} hold?",
            "What is the seating capacity of {ref}?",
            "How many people can watch a match at {ref}?",
        ],
        lambda g: subj(place_name(g, VENUE_KINDS)),
        lambda g: val(number(g.magnitude(600, 68_000))),
    ),
    T(
        "farm_animals",
        "number",
        ["{ref} keeps {value} {animal}.", "There are {value} {animal} at {ref}.", "{ref} is home to {value} {animal}."],
        [
            "How many {animal} are kept at {ref}?",
            "How many {animal} does {ref} have?",
            "What is the number of {animal} at {ref}?",
        ],
        lambda g: subj(f"{g.word()} Farm", animal=g.choice(ANIMALS)),
        lambda g: val(str(g.magnitude(12, 1800))),
    ),
    T(
        "club_members",
        "number",
        [
            "{ref} has {value} members.",
            "There are {value} members in {ref}.",
            "{ref} counts {value} people as members.",
        ],
        ["How many members does {ref} have?", "What is the membership of {ref}?", "How many people belong to {ref}?"],
        lambda g: the(f"{g.town()} {g.choice(CLUB_KINDS)}"),
        lambda g: val(str(g.magnitude(14, 900))),
    ),
    T(
        "gym_price",
        "number",
        [
            "A monthly membership at {ref} costs {value} {currency}.",
            "{ref} charges {value} {currency} a month for membership.",
            "Membership of {ref} is {value} {currency} per month.",
        ],
        [
            "How much is a monthly membership at {ref}?",
            "What does {ref} charge per month?",
            "What is the monthly fee at {ref}?",
        ],
        lambda g: subj(place_name(g, GYM_KINDS), currency=g.choice(CURRENCIES)),
        lambda g: val(str(g.randint(19, 95))),
    ),
]

# ---- date ------------------------------------------------------------------------------------
FESTIVALS = (
    "Harvest Fair",
    "Lantern Festival",
    "Kite Festival",
    "Cheese Fair",
    "Folk Week",
    "Film Festival",
    "Jazz Festival",
    "Book Fair",
    "Flower Show",
    "Oyster Festival",
    "Apple Fair",
    "Light Festival",
    "Storytelling Festival",
    "Boat Race",
    "Puppet Festival",
)
MARKETS = (
    "farmers' market",
    "flea market",
    "fish market",
    "night market",
    "craft market",
    "book market",
    "flower market",
    "antiques market",
)
PROFESSIONS = (
    "sculptor",
    "poet",
    "painter",
    "composer",
    "architect",
    "photographer",
    "novelist",
    "cartographer",
    "botanist",
    "choreographer",
    "glassblower",
    "astronomer",
)
STRUCTURES = (
    "Dam",
    "Lighthouse",
    "Viaduct",
    "Town Hall",
    "Canal",
    "Clock Tower",
    "Corn Exchange",
    "Pier",
    "Observatory",
    "Water Tower",
)
TREATY_STYLES = ("{t} Treaty", "Treaty of {t}", "{t} Accord", "{t} Charter", "Concord of {t}")
CIRCLES = (
    "Book Club",
    "Knitting Circle",
    "Quiz League",
    "Film Society",
    "Poetry Circle",
    "Model Railway Club",
    "Beekeepers' Association",
    "Repair Café",
    "Chess Circle",
)
BAND_ADJ = (
    "Velvet",
    "Paper",
    "Electric",
    "Silent",
    "Neon",
    "Hollow",
    "Wandering",
    "Crooked",
    "Golden",
    "Midnight",
    "Static",
    "Lucky",
    "Borrowed",
    "Northern",
)
BAND_NOUN = (
    "Marrows",
    "Lanterns",
    "Sparrows",
    "Tides",
    "Orchids",
    "Engines",
    "Moths",
    "Pilots",
    "Strangers",
    "Satellites",
    "Ferns",
    "Arcades",
    "Comets",
    "Harbours",
)
SCHOOLS = ("Secondary School", "College", "Conservatory", "School of Art", "Technical College", "Ballet School")

DATE = [
    T(
        "festival_month",
        "date",
        [
            "{ref} is held every {value}.",
            "Every {value}, crowds gather for {ref}.",
            "{ref} takes place each year in {value}.",
        ],
        [
            "In which month is {ref} held?",
            "When in the year does {ref} take place?",
            "Which month does {ref} happen in?",
        ],
        lambda g: the(f"{g.town()} {g.choice(FESTIVALS)}"),
        lambda g: val(g.choice(MONTHS)),
    ),
    T(
        "market_day",
        "date",
        ["{ref} is held every {value}.", "Every {value}, {ref} fills the town square.", "{ref} runs each {value}."],
        ["On which day is {ref} held?", "What day of the week does {ref} run?", "Which weekday is {ref} on?"],
        lambda g: the(f"{g.town()} {g.choice(MARKETS)}"),
        lambda g: val(g.choice(WEEKDAYS)),
    ),
    T(
        "birth_year",
        "date",
        [
            "The {profession} {ref} was born on {day} {month} {value}.",
            "{ref}, the {profession}, was born in {value}.",
            "The {profession} {ref} was born in {month} {value}.",
        ],
        [
            "When was the {profession} {ref} born?",
            "In what year was {ref}, the {profession}, born?",
            "What is the birth year of the {profession} {ref}?",
        ],
        lambda g: subj(g.person()[0], profession=g.choice(PROFESSIONS), day=g.day(), month=g.choice(MONTHS)),
        lambda g: val(str(g.randint(1850, 1995))),
    ),
    T(
        "completed",
        "date",
        [
            "Construction of {ref} was completed in {value}.",
            "{ref} was finished in {value}.",
            "Builders completed {ref} in {value}.",
        ],
        [
            "When was {ref} completed?",
            "In what year did builders finish {ref}?",
            "What year was construction of {ref} finished?",
        ],
        lambda g: the(f"{g.town()} {g.choice(STRUCTURES)}"),
        lambda g: val(str(g.randint(1780, 2024))),
    ),
    T(
        "treaty",
        "date",
        ["{ref} was signed in {value}.", "The parties signed {ref} in {value}.", "In {value}, {ref} was signed."],
        ["When was {ref} signed?", "In what year was {ref} signed?", "In which year did the parties sign {ref}?"],
        lambda g: the(g.choice(TREATY_STYLES).format(t=g.town())),
        lambda g: val(str(g.randint(1500, 1950))),
    ),
    T(
        "meeting_day",
        "date",
        [
            "{ref} meets on the first {value} of each month.",
            "On the last {value} of every month, {ref} meets.",
            "{ref} gets together every {value} evening.",
        ],
        [
            "On which day does {ref} meet?",
            "What day of the week does {ref} meet?",
            "On which weekday does {ref} hold its meetings?",
        ],
        lambda g: the(f"{g.town()} {g.choice(CIRCLES)}"),
        lambda g: val(g.choice(WEEKDAYS)),
    ),
    T(
        "debut_album",
        "date",
        [
            "{ref} released their debut album in {value}.",
            "The debut album by {ref} came out in {value}.",
            "In {value}, {ref} put out their first album.",
        ],
        [
            "When did {ref} release their debut album?",
            "In which year did {ref} put out their first album?",
            "What year did the debut album by {ref} come out?",
        ],
        lambda g: the(f"{g.choice(BAND_ADJ)} {g.choice(BAND_NOUN)}"),
        lambda g: val(str(g.randint(1962, 2024))),
    ),
    T(
        "graduation",
        "date",
        [
            "{ref} holds its graduation ceremony in {value}.",
            "Graduation at {ref} takes place every {value}.",
            "Every {value}, students at {ref} graduate.",
        ],
        [
            "When is the graduation ceremony at {ref}?",
            "In which month do students at {ref} graduate?",
            "What month is graduation at {ref}?",
        ],
        lambda g: subj(f"{g.town()} {g.choice(SCHOOLS)}"),
        lambda g: val(g.choice(MONTHS)),
    ),
]

# ---- code ------------------------------------------------------------------------------------
EVENT_KINDS = ("Summit", "Conference", "Forum", "Expo", "Symposium")
HOTEL_KINDS = ("{w} Hotel", "Hotel {w}", "{w} Inn", "{w} Lodge")
APP_KINDS = (
    "text editor",
    "photo editor",
    "music player",
    "password manager",
    "note-taking app",
    "map app",
    "budgeting app",
    "e-mail client",
)
APP_SUFFIXES = ("pay", "ly", "hub", "desk", "cast", "note", "dash", "kit", "flow", "sync")
BUGS = (
    "login crash",
    "checkout freeze",
    "sync failure",
    "memory leak",
    "blank screen on startup",
    "duplicate invoice bug",
    "broken password reset",
    "slow search",
)
VENUE_CODES = ("{w} Arts Centre", "{w} Community Centre", "{w} Music School", "{w} Sports Hall", "{w} Playhouse")
SERVICES = ("archive", "wiki", "build system", "mail service", "photo library", "backup service")
MYTHS = (
    "boreas",
    "hermes",
    "tethys",
    "nyx",
    "calypso",
    "orpheus",
    "selene",
    "helios",
    "pandora",
    "kronos",
    "eos",
    "zephyr",
    "ariadne",
    "icarus",
    "perseus",
    "medusa",
)
STATION_FEATURES = ("Ridge", "Point", "Base", "Camp", "Outpost", "Bluff")
SITES = ("Allotments", "Boatyard", "Car Park", "Storage Depot", "Community Garden", "Bike Shed")
WIFI_WORDS = ("Harbour", "Seaview", "Palm", "Summit", "Pine", "Coral", "Lobby", "Atrium", "Garden", "Terrace")


def room_number(g: Gen) -> str:
    """A room such as "B214" or "C2.07"."""
    return g.choice((f"{g.letters(1)}{g.randint(100, 499)}", f"{g.letters(1)}{g.randint(0, 4)}.{g.digits(2)}"))


def wifi_name(g: Gen) -> str:
    """A guest network name such as "HarbourGuest-5G"."""
    word = g.choice(WIFI_WORDS)
    return g.choice(
        (
            f"{word}Guest-5G",
            f"{word}-Lobby-{g.digits(2)}",
            f"{word.lower()}_guest_{g.digits(2)}",
            f"{word}-Free-WiFi",
            f"{word.upper()}-GUEST",
        )
    )


CODE = [
    T(
        "keynote_room",
        "code",
        [
            "The {ref} keynote takes place in room {value}.",
            "The keynote of the {ref} is in room {value}.",
            "Room {value} hosts the keynote at the {ref}.",
        ],
        [
            "In which room is the {ref} keynote?",
            "Where is the keynote of the {ref} being held?",
            "Which room hosts the {ref} keynote?",
        ],
        lambda g: subj(f"{g.compound()} {g.choice(EVENT_KINDS)}"),
        lambda g: val(room_number(g)),
    ),
    T(
        "hotel_wifi",
        "code",
        [
            "The guest Wi-Fi network at the {ref} is called {value}.",
            "Guests at the {ref} connect to the Wi-Fi network {value}.",
            "The {ref} names its guest Wi-Fi {value}.",
        ],
        [
            "What is the name of the guest Wi-Fi network at the {ref}?",
            "Which wireless network should guests of the {ref} join?",
            "What is the guest Wi-Fi called at the {ref}?",
        ],
        lambda g: subj(place_name(g, HOTEL_KINDS)),
        lambda g: val(wifi_name(g)),
    ),
    T(
        "version",
        "code",
        [
            "The latest version of the {ref} is {value}.",
            "Version {value} is the newest release of the {ref}.",
            "The {ref} is now at version {value}.",
        ],
        [
            "What is the latest version of the {ref}?",
            "Which release number is the newest for the {ref}?",
            "What version is the {ref} currently on?",
        ],
        lambda g: subj(f"{g.coined(2)} {g.choice(APP_KINDS)}"),
        lambda g: val(f"{g.randint(1, 14)}.{g.randint(0, 24)}.{g.randint(0, 9)}"),
    ),
    T(
        "flight_number",
        "code",
        [
            "{ref}'s daily service to {city} uses flight number {value}.",
            "{ref} flies daily to {city} as flight {value}.",
            "Flight {value} is the daily {ref} service to {city}.",
        ],
        [
            "What flight number does {ref} use for its daily service to {city}?",
            "Which flight is {ref}'s daily connection to {city}?",
            "What is the number of the daily {ref} flight to {city}?",
        ],
        lambda g: subj(
            g.choice((f"{g.coined(2)} Air", f"{g.compound()} Airways", f"Air {g.coined(2)}")), city=g.choice(CITIES)
        ),
        lambda g: val(f"{g.letters(2)}{g.randint(100, 9999)}"),
    ),
    T(
        "bug_ticket",
        "code",
        [
            "The {bug} in {ref} is tracked as ticket {value}.",
            "Ticket {value} tracks the {bug} in {ref}.",
            "The {bug} in {ref} has the tracker ID {value}.",
        ],
        [
            "What is the ticket number for the {bug} in {ref}?",
            "Which tracker ID was assigned to the {bug} in {ref}?",
            "Under which ticket is the {bug} in {ref} tracked?",
        ],
        lambda g: subj(g.choice(ORG_HEADS) + g.choice(APP_SUFFIXES), bug=g.choice(BUGS)),
        lambda g: val(f"{g.letters(3)}-{g.randint(100, 9999)}"),
    ),
    T(
        "postcode",
        "code",
        [
            "The postcode of the {ref} is {value}.",
            "Letters to the {ref} need the postcode {value}.",
            "The {ref} has the postcode {value}.",
        ],
        [
            "What is the postcode of the {ref}?",
            "Which postal code should I use when writing to the {ref}?",
            "What postcode does the {ref} have?",
        ],
        lambda g: subj(place_name(g, VENUE_CODES)),
        lambda g: val(f"{g.letters(2)}{g.randint(1, 29)} {g.randint(1, 9)}{g.letters(2)}"),
    ),
    T(
        "server",
        "code",
        [
            "The {ref} is hosted on a server named {value}.",
            "The {ref} runs on the server {value}.",
            "A server called {value} hosts the {ref}.",
        ],
        [
            "What is the name of the server hosting the {ref}?",
            "On which server does the {ref} live?",
            "Which server runs the {ref}?",
        ],
        lambda g: subj(f"{g.compound()} {g.choice(SERVICES)}"),
        lambda g: val(f"{g.choice(MYTHS)}-{g.digits(2)}"),
    ),
    T(
        "iata",
        "code",
        [
            "The IATA code of {ref} is {value}.",
            "{ref} uses the airport code {value}.",
            "Luggage tags for {ref} show the code {value}.",
        ],
        [
            "What is the IATA code of {ref}?",
            "Which three-letter airport code does {ref} use?",
            "What airport code identifies {ref}?",
        ],
        lambda g: subj(f"{g.town()} {g.choice(('International Airport', 'Regional Airport', 'Airport'))}"),
        lambda g: val(g.letters(3, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")),
    ),
    T(
        "call_sign",
        "code",
        [
            "The research station {ref} uses the radio call sign {value}.",
            "On the radio, the research station {ref} answers as {value}.",
            "{value} is the radio call sign of the research station {ref}.",
        ],
        [
            "What is the radio call sign of the research station {ref}?",
            "Which call sign does the research station {ref} use on the radio?",
            "What call sign identifies the research station {ref}?",
        ],
        lambda g: subj(f"{g.coined(2)} {g.choice(STATION_FEATURES)}"),
        lambda g: val(f"{g.letters(3)}-{g.randint(1, 9)}"),
    ),
    T(
        "gate_code",
        "code",
        [
            "The gate code for the {ref} is {value}.",
            "To open the gate at the {ref}, enter {value}.",
            "The {ref} gate opens with the code {value}.",
        ],
        [
            "What is the gate code for the {ref}?",
            "Which number opens the gate at the {ref}?",
            "What code do I enter at the {ref} gate?",
        ],
        lambda g: subj(f"{g.word()} {g.choice(SITES)}"),
        lambda g: val(str(g.randint(1000, 9999))),
    ),
]

# ---- product ---------------------------------------------------------------------------------
MODELS = ("X", "S", "Pro", "Air", "Max", "Lite", "One", "Neo", "Z", "GT")
CODENAME_A = (
    "Snow",
    "Rain",
    "Moss",
    "Ember",
    "Tide",
    "Dusk",
    "Fern",
    "Frost",
    "Cloud",
    "Stone",
    "Dawn",
    "Wind",
    "Ash",
    "Reed",
    "Hail",
    "Star",
)
CODENAME_B = ("melt", "fall", "drift", "glow", "crest", "light", "brook", "wing", "shade", "spark", "field", "song")
APP_TOPICS = ("podcast", "weather", "recipe", "chess", "budgeting", "flashcard", "fitness", "hiking", "language")
LANGUAGES = (
    "Kotlin",
    "Swift",
    "Haskell",
    "Elixir",
    "OCaml",
    "Zig",
    "Dart",
    "Scala",
    "Clojure",
    "Erlang",
    "Julia",
    "Lua",
    "TypeScript",
    "Crystal",
    "Ruby",
    "Python",
    "Nim",
    "Elm",
)
APPLIANCES = (
    "espresso machine",
    "stand mixer",
    "air fryer",
    "robot vacuum",
    "sewing machine",
    "bread maker",
    "juicer",
    "rice cooker",
)
WEARABLES = ("smartwatch", "fitness tracker", "wireless earbuds case", "bike computer", "hearing aid")
GADGETS = (
    "noise-cancelling headset",
    "smart speaker",
    "gaming mouse",
    "e-reader",
    "robot lawnmower",
    "electric toothbrush",
    "action camera",
)
GADGET_SUFFIXES = ("Pro", "Max", "Air", "One", "Mini", "Plus")
GEAR = ("running shoe", "backpack", "rain jacket", "yoga mat", "sunglasses", "swimsuit", "skateboard")
MATERIALS = (
    "plastic bottles",
    "car tyres",
    "coffee grounds",
    "ocean plastic",
    "cork",
    "wool offcuts",
    "denim scraps",
    "aluminium cans",
    "sailcloth",
    "banana fibre",
    "grape leather",
    "seaweed",
)


def brand_model(g: Gen) -> str:
    """An invented product name such as "Kethra X4" or "Vorin 560"."""
    return g.choice(
        (
            f"{g.coined(2)} {g.choice(MODELS)}{g.randint(1, 9)}",
            f"{g.coined(2)} {g.randint(2, 990)}",
            f"{g.coined(2)} {g.choice(MODELS)}",
        )
    )


PRODUCT = [
    T(
        "battery",
        "product",
        [
            "The {ref} phone has a {value} mAh battery.",
            "The battery in the {ref} phone holds {value} mAh.",
            "{ref} phones ship with a {value} mAh battery.",
        ],
        [
            "What is the battery capacity of the {ref} phone?",
            "How many mAh does the battery in the {ref} hold?",
            "How big is the battery in the {ref} phone?",
        ],
        lambda g: subj(brand_model(g)),
        lambda g: val(str(g.randint(60, 130) * 50)),
    ),
    T(
        "codename",
        "product",
        [
            "The release codename for {ref} is {value}.",
            "{ref} was developed under the codename {value}.",
            "Developers call the {ref} release {value}.",
        ],
        [
            "What is the release codename of {ref}?",
            "Which codename was given to the {ref} release?",
            "Under what codename was {ref} developed?",
        ],
        lambda g: subj(f"{g.coined(2)} OS {g.randint(2, 19)}"),
        lambda g: val(g.choice(CODENAME_A) + g.choice(CODENAME_B)),
    ),
    T(
        "ebike_range",
        "product",
        [
            "The {ref} e-bike has a range of {value} kilometres.",
            "On one charge, the {ref} e-bike can ride {value} kilometres.",
            "The {ref} e-bike covers up to {value} kilometres per charge.",
        ],
        [
            "What is the range of the {ref} e-bike?",
            "How far can the {ref} e-bike travel on one charge?",
            "How many kilometres can the {ref} e-bike go per charge?",
        ],
        lambda g: subj(brand_model(g)),
        lambda g: val(str(g.randint(30, 180))),
    ),
    T(
        "app_language",
        "product",
        [
            "{ref}, a {topic} app, is written in the {value} programming language.",
            "The {topic} app {ref} is built in {value}.",
            "Developers wrote the {topic} app {ref} in {value}.",
        ],
        [
            "Which programming language is {ref} written in?",
            "In what language did developers build the {ref} app?",
            "What programming language powers the {topic} app {ref}?",
        ],
        lambda g: subj(g.choice(ORG_HEADS) + g.choice(APP_SUFFIXES), topic=g.choice(APP_TOPICS)),
        lambda g: val(g.choice(LANGUAGES)),
    ),
    T(
        "appliance_price",
        "product",
        [
            "The {ref} retails for {value} {currency}.",
            "The {ref} costs {value} {currency} in shops.",
            "Shops sell the {ref} for {value} {currency}.",
        ],
        [
            "How much does the {ref} cost?",
            "What is the retail price of the {ref}?",
            "What do shops charge for the {ref}?",
        ],
        lambda g: subj(f"{g.coined(2)} {g.choice(APPLIANCES)}", currency=g.choice(CURRENCIES)),
        lambda g: val(str(g.randint(39, 990))),
    ),
    T(
        "weight",
        "product",
        [
            "The {ref} weighs {value} grams.",
            "Weighing only {value} grams, the {ref} is the lightest in its range.",
            "The {ref} has a weight of {value} grams.",
        ],
        [
            "How much does the {ref} weigh?",
            "What is the weight of the {ref} in grams?",
            "How many grams does the {ref} weigh?",
        ],
        lambda g: subj(f"{g.coined(2)} {g.choice(WEARABLES)}"),
        lambda g: val(str(g.randint(12, 160))),
    ),
    T(
        "gadget_name",
        "product",
        [
            "{ref}'s {gadget} is called the {value}.",
            "The {gadget} made by {ref} is named the {value}.",
            "{ref} sells its {gadget} under the name {value}.",
        ],
        [
            "What is {ref}'s {gadget} called?",
            "What is the name of the {gadget} made by {ref}?",
            "Under what name does {ref} sell its {gadget}?",
        ],
        lambda g: subj(g.coined(2), gadget=g.choice(GADGETS)),
        lambda g: (lambda name: val(f"{name} {g.choice(GADGET_SUFFIXES)}", name))(g.coined(3)),
    ),
    T(
        "material",
        "product",
        [
            "The {ref} is made from recycled {value}.",
            "The makers of the {ref} use recycled {value}.",
            "The {ref} is produced from recycled {value}.",
        ],
        [
            "What is the {ref} made from?",
            "Which recycled material goes into the {ref}?",
            "What recycled material is the {ref} made of?",
        ],
        lambda g: subj(f"{brand_model(g)} {g.choice(GEAR)}"),
        lambda g: val(g.choice(MATERIALS)),
    ),
    T(
        "drone_flight",
        "product",
        [
            "The {ref} drone can fly for {value} minutes on a single battery.",
            "One battery keeps the {ref} drone in the air for {value} minutes.",
            "The flight time of the {ref} drone is {value} minutes per battery.",
        ],
        [
            "How long can the {ref} drone fly on one battery?",
            "What is the flight time of the {ref} drone per charge?",
            "How many minutes can the {ref} drone stay airborne on one battery?",
        ],
        lambda g: subj(brand_model(g)),
        lambda g: val(str(g.randint(14, 58))),
    ),
]

# ---- science_fiction_world -------------------------------------------------------------------
STAR_TYPES = ("red dwarf", "white dwarf", "blue giant", "yellow", "orange dwarf", "binary")
SHIP_A = (
    "Meridian",
    "Patient",
    "Distant",
    "Silver",
    "Crimson",
    "Endless",
    "Quiet",
    "Northern",
    "Lucid",
    "Iron",
    "Second",
    "Bright",
    "Wandering",
    "Hollow",
)
SHIP_B = (
    "Dawn",
    "Horizon",
    "Promise",
    "Vigil",
    "Lantern",
    "Covenant",
    "Tide",
    "Harvest",
    "Mercy",
    "Reckoning",
    "Chorus",
    "Anchor",
    "Verdict",
    "Ember",
)
RANKS = ("Commander", "Captain", "Admiral", "Navigator-Captain")
POLITIES = ("Confederacy", "Republic", "Dominion", "Compact", "Hegemony", "Concord", "League", "Protectorate")
PEOPLES = ("people", "nomads", "sea clans", "hill tribes", "sky-dwellers", "river folk", "dune riders", "star-farers")
EMPIRES = ("Empire", "Kingdom", "Sultanate", "Imperium", "Star Kingdom", "Theocracy")
CITY_ADJ = ("floating", "sunken", "crystal", "walled", "orbital", "frozen", "underground", "tidal")
REALM_STYLES = ("{n}fold Realms", "{c} Isles", "Kingdoms of {c}", "Shattered Lands of {c}", "{c} Reaches")
REALM_NUMBERS = ("Seven", "Three", "Twelve", "Five", "Eleven", "Four")
DOMAINS = (
    ("storms", "storm"),
    ("the sea", "sea"),
    ("the harvest", "harvest"),
    ("fire", "fire"),
    ("dreams", "dream"),
    ("war", "war"),
    ("the dead", "death"),
    ("the hunt", "hunt"),
    ("winter", "winter"),
)
WEAPON_A = ("Night", "Dawn", "Storm", "Frost", "Ember", "Grief", "Star", "Ash", "Thorn", "Moon", "Gloam", "Wyrm")
WEAPON_B = ("glass", "brand", "fang", "song", "bane", "thorn", "edge", "reaver", "light", "splinter", "whisper")
GUARDED = ("Library", "Vault", "Archive", "Tomb", "Garden", "Well", "Gate", "Observatory")
GUARDED_ADJ = ("Glass", "Sunken", "Silent", "Burning", "Hidden", "Eternal", "Broken", "Golden")
CREATURES = ("dragon", "sphinx", "serpent", "stone golem", "griffin", "wyvern", "frost giant", "kraken")
FUELS = ("gel", "dust", "salt", "resin", "ice", "plasma", "oil")
GATE_A = ("Amber", "Cobalt", "Iron", "Violet", "Pale", "Ninth", "Silent", "Crimson")
GATE_B = ("Arch", "Gate", "Ring", "Door", "Threshold", "Loop")


def _planet(g: Gen) -> Subject:
    """An invented planet with the kind of star it orbits (slots ``star`` and ``a_star``)."""
    star = g.choice(STAR_TYPES)
    return subj(g.coined(3), star=star, a_star=with_article(star))


def _empire(g: Gen) -> Subject:
    """An invented empire with the adjective for its capital (slots ``adj`` and ``a_adj``)."""
    adj = g.choice(CITY_ADJ)
    return the(f"{g.coined(2)} {g.choice(EMPIRES)}", adj=adj, a_adj=with_article(adj))


def realm(g: Gen) -> str:
    """An invented fantasy realm ("the Sevenfold Realms", "the Kaleth Isles")."""
    return g.choice(REALM_STYLES).format(n=g.choice(REALM_NUMBERS), c=g.coined(2))


def domain(g: Gen) -> dict[str, str]:
    """A god's domain as a noun phrase and as the label in "the storm god"."""
    noun, label = g.rng.choice(DOMAINS)
    return {"domain": noun, "label": label}


SCIENCE_FICTION = [
    T(
        "orbits_star",
        "science_fiction_world",
        [
            "The planet {ref} orbits {a_star} star called {value}.",
            "{value}, {a_star} star, is orbited by the planet {ref}.",
            "The planet {ref} circles the {star} star {value}.",
        ],
        [
            "What star does the planet {ref} orbit?",
            "Around which star does {ref} travel?",
            "Which star is the planet {ref} in orbit around?",
        ],
        _planet,
        lambda g: val(g.coined(2)),
    ),
    T(
        "ship_captain",
        "science_fiction_world",
        [
            "The starship {ref} is captained by {rank} {value}.",
            "{rank} {value} commands the starship {ref}.",
            "The captain of the starship {ref} is {rank} {value}.",
        ],
        [
            "Who captains the starship {ref}?",
            "Who is in command of the starship {ref}?",
            "Which officer commands the starship {ref}?",
        ],
        lambda g: subj(f"{g.choice(SHIP_A)} {g.choice(SHIP_B)}", rank=g.choice(RANKS)),
        person_val,
    ),
    T(
        "day_length",
        "science_fiction_world",
        [
            "A day on the moon {ref} lasts {value} hours.",
            "The moon {ref} takes {value} hours to turn once on its axis.",
            "On the moon {ref}, one day is {value} hours long.",
        ],
        [
            "How long is a day on the moon {ref}?",
            "How many hours does a single day last on {ref}?",
            "How many hours long is one day on the moon {ref}?",
        ],
        lambda g: subj(g.coined(3)),
        lambda g: val(str(g.randint(6, 96))),
    ),
    T(
        "currency",
        "science_fiction_world",
        [
            "{ref} pays for everything in a currency called the {value}.",
            "The currency of {ref} is the {value}.",
            "In {ref}, people pay with the {value}.",
        ],
        ["What currency does {ref} use?", "What is money called in {ref}?", "What do people pay with in {ref}?"],
        lambda g: the(f"{g.coined(2)} {g.choice(POLITIES)}"),
        lambda g: val(g.coined_word()),
    ),
    T(
        "language",
        "science_fiction_world",
        [
            "{ref} speak a language called {value}.",
            "{value} is the language of {ref}.",
            "The language spoken by {ref} is {value}.",
        ],
        ["What language do {ref} speak?", "Which tongue is spoken by {ref}?", "What is the language of {ref} called?"],
        lambda g: the(f"{g.coined(2)} {g.choice(PEOPLES)}"),
        lambda g: val(cap(g.coined_word())),
    ),
    T(
        "empire_capital",
        "science_fiction_world",
        [
            "The capital of {ref} is the {adj} city of {value}.",
            "{value}, {a_adj} city, is the capital of {ref}.",
            "{ref} is ruled from the {adj} city of {value}.",
        ],
        ["What is the capital of {ref}?", "Which city is the seat of {ref}?", "From which city is {ref} ruled?"],
        _empire,
        lambda g: val(g.coined(3)),
    ),
    T(
        "realm_god",
        "science_fiction_world",
        [
            "In {ref}, the god of {domain} is named {value}.",
            "{value} is the god of {domain} in {ref}.",
            "The people of {ref} worship {value} as their god of {domain}.",
        ],
        [
            "What is the name of the god of {domain} in {ref}?",
            "Who is the {label} god of {ref}?",
            "Which god rules over {domain} in {ref}?",
        ],
        lambda g: the(realm(g), **domain(g)),
        lambda g: val(g.coined(2)),
    ),
    T(
        "sword_smith",
        "science_fiction_world",
        [
            "The sword {ref} was forged by the smith {value}.",
            "The smith {value} forged the sword {ref}.",
            "{ref}, a legendary sword, was made by the smith {value}.",
        ],
        ["Who forged the sword {ref}?", "Which smith made the sword {ref}?", "Who is the maker of the sword {ref}?"],
        lambda g: subj(g.choice(WEAPON_A) + g.choice(WEAPON_B)),
        lambda g: val(*g.fantasy_person()),
    ),
    T(
        "guardian",
        "science_fiction_world",
        [
            "The {creature} {value} guards {ref}.",
            "{ref} is guarded by the {creature} {value}.",
            "{value}, an ancient {creature}, protects {ref}.",
        ],
        ["Who guards {ref}?", "Which creature protects {ref}?", "What is the name of the guardian of {ref}?"],
        lambda g: the(f"{g.choice(GUARDED_ADJ)} {g.choice(GUARDED)} of {g.coined(2)}", creature=g.choice(CREATURES)),
        lambda g: val(g.coined(3)),
    ),
    T(
        "android_fuel",
        "science_fiction_world",
        [
            "In {ref}, androids run on a fuel called {value} {fuel}.",
            "The androids of {ref} are powered by {value} {fuel}.",
            "{value} {fuel} is the fuel that powers the androids in {ref}.",
        ],
        [
            "What fuel powers the androids in {ref}?",
            "In {ref}, what do androids run on?",
            "Which fuel keeps the androids of {ref} going?",
        ],
        lambda g: the(
            f"{g.coined(2)} {g.choice(('novels', 'saga', 'trilogy', 'comics', 'chronicles'))}", fuel=g.choice(FUELS)
        ),
        lambda g: val(g.coined_word()),
    ),
    T(
        "jump_gate",
        "science_fiction_world",
        [
            "Ships jump through the {value}, a gate near the colony of {ref}.",
            "The jump gate near the colony of {ref} is called the {value}.",
            "Near the colony of {ref}, ships use a jump gate named the {value}.",
        ],
        [
            "What is the jump gate near the colony of {ref} called?",
            "Which gate do ships use to jump near {ref}?",
            "What is the name of the jump gate by the colony of {ref}?",
        ],
        lambda g: subj(f"New {g.coined(2)}"),
        lambda g: val(f"{g.choice(GATE_A)} {g.choice(GATE_B)}"),
    ),
]

# ---- personal --------------------------------------------------------------------------------
PROFESSIONALS = (
    ("dentist", "Dr. ", "see"),
    ("doctor", "Dr. ", "see"),
    ("physiotherapist", "", "see"),
    ("hairdresser", "", "go to"),
    ("accountant", "", "use"),
    ("plumber", "", "call"),
    ("piano teacher", "", "have lessons with"),
    ("driving instructor", "", "learn with"),
    ("solicitor", "", "use"),
    ("optician", "", "go to"),
    ("personal trainer", "", "train with"),
    ("vet", "Dr. ", "take pets to"),
)
PETS = (
    "cat",
    "dog",
    "parrot",
    "rabbit",
    "hamster",
    "tortoise",
    "horse",
    "goldfish",
    "guinea pig",
    "ferret",
    "budgie",
    "pony",
)
PET_NAMES = (
    "Pickle",
    "Mochi",
    "Pepper",
    "Waffles",
    "Juniper",
    "Bramble",
    "Noodle",
    "Tofu",
    "Ziggy",
    "Clementine",
    "Marmalade",
    "Pippin",
    "Nutmeg",
    "Sprout",
    "Bingo",
    "Toffee",
    "Cosmo",
    "Luna",
    "Dumpling",
    "Sherbet",
    "Pudding",
    "Oberyn",
    "Gizmo",
    "Truffle",
    "Chutney",
    "Paprika",
    "Wasabi",
    "Meatball",
    "Pretzel",
    "Fig",
    "Crumble",
    "Smudge",
    "Kiwi",
    "Bagel",
    "Pancake",
    "Sardine",
    "Rascal",
    "Bobbin",
    "Jellybean",
    "Muffin",
)
FAVOURITES = {
    "colour": (
        "teal",
        "mauve",
        "saffron",
        "cobalt",
        "turquoise",
        "burgundy",
        "lilac",
        "mustard",
        "sage green",
        "coral",
        "indigo",
        "magenta",
        "scarlet",
        "amber",
    ),
    "flower": (
        "peony",
        "tulip",
        "sunflower",
        "orchid",
        "lavender",
        "magnolia",
        "dahlia",
        "freesia",
        "marigold",
        "camellia",
        "hydrangea",
        "snowdrop",
    ),
    "fruit": (
        "mango",
        "lychee",
        "fig",
        "pomegranate",
        "papaya",
        "apricot",
        "quince",
        "persimmon",
        "guava",
        "passion fruit",
        "gooseberry",
    ),
    "board game": (
        "backgammon",
        "Scrabble",
        "mahjong",
        "Catan",
        "draughts",
        "Carcassonne",
        "Ticket to Ride",
        "Cluedo",
        "dominoes",
    ),
    "sport": ("squash", "curling", "handball", "rowing", "fencing", "archery", "cycling", "netball", "table tennis"),
    "bird": ("kingfisher", "puffin", "heron", "robin", "wren", "hoopoe", "magpie", "toucan", "barn owl", "goldfinch"),
    "dessert": (
        "tiramisu",
        "baklava",
        "pavlova",
        "crème brûlée",
        "panna cotta",
        "cheesecake",
        "trifle",
        "sticky toffee pudding",
        "kheer",
    ),
    "film genre": (
        "westerns",
        "musicals",
        "documentaries",
        "thrillers",
        "horror films",
        "romantic comedies",
        "animated films",
        "war films",
    ),
}
ACTIVITIES = (
    "football practice",
    "piano lesson",
    "swimming class",
    "ballet class",
    "chess club",
    "judo class",
    "drama club",
    "art class",
    "violin lesson",
    "gymnastics session",
    "coding club",
    "karate class",
    "choir practice",
    "tennis lesson",
)
MEETINGS = ("standup", "weekly sync", "retrospective", "sprint planning", "demo", "design review", "all-hands")
TEAM_EVENTS = ("offsite", "summer party", "winter retreat", "hackathon", "annual kickoff", "strategy retreat")
TEAM_ROLES = ("project manager", "product owner", "scrum master", "tech lead", "team lead", "mentor", "release manager")
ALLERGENS = (
    "sesame",
    "shellfish",
    "walnuts",
    "kiwi",
    "eggs",
    "milk",
    "soy",
    "celery",
    "mustard",
    "lupin",
    "almonds",
    "hazelnuts",
    "strawberries",
    "wheat",
    "mango",
    "cashews",
)
PASSWORD_WORDS = (
    "heron",
    "maple",
    "otter",
    "comet",
    "violet",
    "pebble",
    "falcon",
    "willow",
    "ember",
    "tulip",
    "badger",
    "saffron",
    "quartz",
    "lantern",
    "cobalt",
    "meadow",
)


def relative(g: Gen, pool: Sequence[str] = RELATIVES) -> dict[str, str]:
    """A relative as a person ("my aunt") and as a possessive ("my aunt's")."""
    person = "my " + g.choice(pool)
    return {"person": person, "poss": possessive(person)}


def relative_subject(g: Gen, pattern: str, pool: Sequence[str] = RELATIVES, **slots: str) -> Subject:
    """A subject about a relative: ``pattern`` may use {person} ("my aunt") and {poss} ("my aunt's")."""
    rel = relative(g, pool)
    return subj(pattern.format(**rel), **rel, **slots)


def plate(g: Gen) -> str:
    """A licence plate in one of three national styles ("KV62 RTX", "B-XR 4417", "7ABC123")."""
    return g.choice(
        (
            f"{g.letters(2)}{g.digits(2)} {g.letters(3)}",
            f"{g.letters(1)}-{g.letters(2)} {g.randint(10, 9999)}",
            f"{g.randint(1, 9)}{g.letters(3)}{g.digits(3)}",
        )
    )


def _professional_subject(g: Gen) -> Subject:
    """A relative's professional ("my aunt's dentist"), with the title and verb to ask about them."""
    pro, title, verb = g.rng.choice(PROFESSIONALS)
    return relative_subject(g, "{poss} " + pro, pro=pro, title=title, verb=verb)


def _favourite_subject(g: Gen) -> Subject:
    """A relative's favourite thing ("my uncle's favourite colour")."""
    thing = g.choice(tuple(FAVOURITES))
    return relative_subject(g, "{poss} favourite " + thing, thing=thing)


def _team(g: Gen) -> str:
    """One of our teams ("our design team")."""
    return f"our {g.choice(TEAMS)} team"


class SubjectDependent:
    """A value maker that needs the subject just drawn (a favourite colour needs a colour)."""

    def __init__(self, make: Callable[[Gen, Subject], Value]) -> None:
        self.make = make

    def __call__(self, gen: Gen, subject: Subject) -> Value:
        return self.make(gen, subject)


PERSONAL = [
    T(
        "professional",
        "personal",
        ["{ref} is {title}{value}.", "{title}{value} is {ref}.", "{ref} is called {title}{value}."],
        ["Who is {ref}?", "What is the name of {ref}?", "Which {pro} does {person} {verb}?"],
        _professional_subject,
        person_val,
    ),
    T(
        "pet_name",
        "personal",
        ["{ref} is called {value}.", "{ref}'s name is {value}.", "{value} is the name of {ref}."],
        ["What is {ref} called?", "What is the name of {ref}?", "What name does {ref} answer to?"],
        lambda g: relative_subject(g, "{poss} " + g.choice(PETS)),
        lambda g: val(g.choice(PET_NAMES)),
    ),
    T(
        "favourite",
        "personal",
        ["{ref} is {value}.", "{value} is {ref}.", "Of all {thing}s, {person} likes {value} best."],
        ["What is {ref}?", "Which {thing} does {person} like best?", "What {thing} does {person} love most?"],
        _favourite_subject,
        SubjectDependent(lambda g, s: val(g.choice(FAVOURITES[s.slots["thing"]]))),
    ),
    T(
        "licence_plate",
        "personal",
        [
            "The licence plate of {ref} is {value}.",
            "{ref} has the registration {value}.",
            "{ref} is registered as {value}.",
        ],
        [
            "What is the licence plate of {ref}?",
            "What registration number is on {ref}?",
            "Which number plate does {ref} have?",
        ],
        lambda g: relative_subject(g, "{poss} car"),
        lambda g: val(plate(g)),
    ),
    T(
        "activity_end",
        "personal",
        ["{ref} ends at {value} pm.", "{ref} finishes at {value} pm.", "{ref} is over at {value} pm."],
        ["What time does {ref} end?", "When does {ref} finish?", "At what time is {ref} over?"],
        lambda g: relative_subject(g, "{poss} " + g.choice(ACTIVITIES), CHILDREN),
        lambda g: val(g.clock(4, 7)),
    ),
    T(
        "team_meeting",
        "personal",
        ["{ref} is at {value}.", "{ref} starts at {value} sharp.", "We hold {ref} at {value}."],
        ["What time is {ref}?", "When does {ref} start?", "At what time does {ref} begin?"],
        lambda g: subj(f"{_team(g)}'s {g.choice(MEETINGS)}"),
        lambda g: val(g.clock(8, 16)),
    ),
    T(
        "team_event_city",
        "personal",
        ["{ref} will be in {value}.", "We are holding {ref} in {value}.", "{value} will host {ref} this year."],
        ["Where is {ref}?", "In which city is {ref} being held?", "Which city will host {ref}?"],
        lambda g: subj(f"{_team(g)}'s {g.choice(TEAM_EVENTS)}"),
        lambda g: val(g.choice(CITIES)),
    ),
    T(
        "team_role",
        "personal",
        ["{value} is {ref}.", "{ref} is {value}.", "Since {month}, {value} has been {ref}."],
        ["Who is {ref}?", "Which person is {ref}?", "Who currently acts as {ref}?"],
        lambda g: subj(f"{_team(g)}'s {g.choice(TEAM_ROLES)}", month=g.choice(MONTHS)),
        person_val,
    ),
    T(
        "allergy",
        "personal",
        [
            "{ref} is allergic to {value}.",
            "{ref} has an allergy to {value}.",
            "{ref} cannot eat {value} because of an allergy.",
        ],
        [
            "What is {ref} allergic to?",
            "Which food allergy does {ref} have?",
            "What food must {ref} avoid because of an allergy?",
        ],
        lambda g: relative_subject(g, "{person}"),
        lambda g: val(g.choice(ALLERGENS)),
    ),
    T(
        "birthday",
        "personal",
        [
            "{ref} is on {day} {value}.",
            "Every year on {day} {value}, we celebrate {ref}.",
            "{ref} falls on {day} {value}.",
        ],
        ["When is {ref}?", "In which month is {ref}?", "On what date does {ref} fall?"],
        lambda g: relative_subject(g, "{poss} birthday", day=g.day()),
        lambda g: val(g.choice(MONTHS)),
    ),
    T(
        "home_wifi",
        "personal",
        [
            "The password for {ref} is {value}.",
            "{ref} uses the password {value}.",
            "To join {ref}, type the password {value}.",
        ],
        ["What is the password for {ref}?", "Which password gets me onto {ref}?", "What do I type to join {ref}?"],
        lambda g: relative_subject(g, "{poss} home Wi-Fi"),
        lambda g: val(f"{g.choice(PASSWORD_WORDS)}-{g.choice(PASSWORD_WORDS)}-{g.digits(2)}"),
    ),
]

# =============================================================================================
# Counterfactual relations: real subjects with a deliberately wrong value
# =============================================================================================


@dataclass(frozen=True)
class RealFact:
    """A real-world fact: ``truths`` are the correct values, ``alternatives`` plausible wrong ones."""

    subject: str
    truths: tuple[str, ...]
    alternatives: tuple[str, ...] = ()
    ref: str | None = None


@dataclass(frozen=True)
class Relation:
    """A counterfactual relation. Wrong values come from a fact's own alternatives, else from
    ``pool`` (other facts' truths plus extras), else from ``numeric`` (a function of the truth)."""

    name: str
    statements: tuple[str, ...]
    questions: tuple[str, ...]
    facts: tuple[RealFact, ...]
    persons: bool = False  # values are people: the statement names them, the target is the family name
    extra_pool: tuple[str, ...] = ()
    numeric: Callable[[int, random.Random], int] | None = None

    def pool(self) -> list[str]:
        """Wrong-value candidates: every fact's truths (for people only the best-known, listed
        first, so that "Brian Acton founded Nike" does not happen) plus the extras."""
        seen: dict[str, None] = {}
        for fact in self.facts:
            for truth in fact.truths[:1] if self.persons else fact.truths:
                seen.setdefault(truth, None)
        for extra in self.extra_pool:
            seen.setdefault(extra, None)
        return list(seen)


FAMILY_NAME_OVERRIDES = {
    "Vincent van Gogh": "van Gogh",
    "Jan van Eyck": "van Eyck",
    "Leonardo da Vinci": "da Vinci",
    "Gabriel García Márquez": "García Márquez",
    "Johann Strauss II": "Strauss",
    "Murasaki Shikibu": "Murasaki",
}


def family_name(full: str) -> str:
    """The family name used as the target for a real person."""
    return FAMILY_NAME_OVERRIDES.get(full, full.split()[-1])


def F(subject: str, truths: str | Sequence[str], alternatives: Sequence[str] = (), ref: str | None = None) -> RealFact:
    """A real fact (``truths`` may be one value or several)."""
    truth_tuple = (truths,) if isinstance(truths, str) else tuple(truths)
    return RealFact(subject, truth_tuple, tuple(alternatives), ref)


def FT(subject: str, truths: str | Sequence[str], alternatives: Sequence[str] = ()) -> RealFact:
    """A fact whose subject sentences introduce with "the"."""
    return F(subject, truths, alternatives, "the " + subject)


def shifted_year(true: int, rng: random.Random) -> int:
    """A wrong year 3 to 45 years away from the true one."""
    return true + rng.choice((-1, 1)) * rng.randint(3, 45)


def scaled(true: int, rng: random.Random) -> int:
    """A wrong temperature clearly different from the true one."""
    factor = rng.choice((0.5, 0.6, 0.7, 0.75, 1.3, 1.4, 1.5, 1.7))
    wrong = round(true * factor)
    if abs(wrong - true) < 8:
        wrong = true + rng.choice((-1, 1)) * rng.randint(8, 25)
    return wrong


def small_count(true: int, rng: random.Random) -> int:
    """A wrong small count (2 to 12)."""
    return rng.choice([n for n in range(2, 13) if n != true])


def even_count(true: int, rng: random.Random) -> int:
    """A wrong even count of legs."""
    return rng.choice([n for n in (2, 4, 6, 8, 10, 12) if n != true])


COUNTERFACTUAL_RELATIONS: tuple[Relation, ...] = (
    Relation(
        "capital",
        (
            "The capital of {ref} is {value}.",
            "{value} is the capital of {ref}.",
            "{value} serves as the capital city of {ref}.",
        ),
        (
            "What is the capital of {ref}?",
            "Which city is the capital of {ref}?",
            "Which city serves as the capital of {ref}?",
            "Where is the seat of government of {ref}?",
        ),
        (
            F("Portugal", "Lisbon", ("Porto", "Braga", "Coimbra")),
            F("Iceland", "Reykjavik", ("Akureyri", "Keflavik")),
            F("Romania", "Bucharest", ("Cluj-Napoca", "Timișoara", "Iași")),
            F("Bulgaria", "Sofia", ("Plovdiv", "Varna")),
            F("Croatia", "Zagreb", ("Split", "Rijeka", "Dubrovnik")),
            F("Serbia", "Belgrade", ("Novi Sad", "Niš")),
            F("Ukraine", "Kyiv", ("Kharkiv", "Odesa", "Lviv")),
            F("Estonia", "Tallinn", ("Tartu", "Pärnu")),
            F("Latvia", "Riga", ("Daugavpils", "Liepāja")),
            F("Lithuania", "Vilnius", ("Kaunas", "Klaipėda")),
            F("Slovakia", "Bratislava", ("Košice", "Žilina")),
            F("Slovenia", "Ljubljana", ("Maribor", "Koper")),
            F("Albania", "Tirana", ("Durrës", "Shkodër")),
            F("Cyprus", "Nicosia", ("Limassol", "Larnaca")),
            F("Malta", "Valletta", ("Sliema", "Mdina")),
            F("Belarus", "Minsk", ("Gomel", "Grodno")),
            F("Armenia", "Yerevan", ("Gyumri", "Vanadzor")),
            F("Azerbaijan", "Baku", ("Ganja", "Sumgait")),
            F("Colombia", "Bogotá", ("Medellín", "Cali", "Cartagena")),
            F("Venezuela", "Caracas", ("Maracaibo", "Valencia")),
            F("Ecuador", "Quito", ("Guayaquil", "Cuenca")),
            F("Uruguay", "Montevideo", ("Punta del Este", "Salto")),
            F("Paraguay", "Asunción", ("Ciudad del Este", "Encarnación")),
            F("South Korea", "Seoul", ("Busan", "Incheon")),
            F("Indonesia", "Jakarta", ("Surabaya", "Bandung", "Denpasar")),
            F("Philippines", "Manila", ("Cebu", "Davao")),
            F("Malaysia", "Kuala Lumpur", ("Johor Bahru", "Ipoh")),
            F("Pakistan", "Islamabad", ("Karachi", "Lahore")),
            F("Bangladesh", "Dhaka", ("Chittagong", "Khulna")),
            F("Nepal", "Kathmandu", ("Pokhara", "Lalitpur")),
            F("Mongolia", "Ulaanbaatar", ("Erdenet", "Darkhan")),
            F("Kazakhstan", "Astana", ("Almaty", "Shymkent")),
            F("Saudi Arabia", "Riyadh", ("Jeddah", "Mecca")),
            F("Iraq", "Baghdad", ("Basra", "Mosul", "Erbil")),
            F("Syria", "Damascus", ("Aleppo", "Homs")),
            F("Jordan", "Amman", ("Aqaba", "Irbid")),
            F("Lebanon", "Beirut", ("Byblos", "Sidon")),
            F("Ethiopia", "Addis Ababa", ("Dire Dawa", "Gondar")),
            F("Ghana", "Accra", ("Kumasi", "Tamale")),
            F("Senegal", "Dakar", ("Saint-Louis", "Touba")),
            F("Uganda", "Kampala", ("Entebbe", "Gulu")),
            F("Zimbabwe", "Harare", ("Bulawayo", "Mutare")),
            F("Zambia", "Lusaka", ("Ndola", "Livingstone")),
            F("Angola", "Luanda", ("Huambo", "Lobito")),
            F("Algeria", "Algiers", ("Oran", "Constantine")),
            F("Libya", "Tripoli", ("Benghazi", "Misrata")),
            F("Sudan", "Khartoum", ("Omdurman", "Port Sudan")),
            F("Afghanistan", "Kabul", ("Kandahar", "Herat")),
            F("Qatar", "Doha", ("Al Wakrah", "Al Khor")),
            F("Oman", "Muscat", ("Salalah", "Sohar")),
            F("Cambodia", "Phnom Penh", ("Siem Reap", "Battambang")),
            F("Laos", "Vientiane", ("Luang Prabang", "Pakse")),
            F("Jamaica", "Kingston", ("Montego Bay", "Spanish Town")),
            F("Mexico", "Mexico City", ("Guadalajara", "Monterrey")),
            F("Tunisia", "Tunis", ("Sfax", "Sousse")),
            F("United Arab Emirates", "Abu Dhabi", ("Dubai", "Sharjah")),
            F("Kyrgyzstan", "Bishkek", ("Osh", "Karakol")),
            F("Uzbekistan", "Tashkent", ("Samarkand", "Bukhara")),
            F("Madagascar", "Antananarivo", ("Toamasina", "Mahajanga")),
            F("Mozambique", "Maputo", ("Beira", "Nampula")),
            F("Honduras", "Tegucigalpa", ("San Pedro Sula", "La Ceiba")),
        ),
    ),
    Relation(
        "official_language",
        (
            "The official language of {ref} is {value}.",
            "{ref} has {value} as its official language.",
            "In {ref}, the official language is {value}.",
        ),
        (
            "What is the official language of {ref}?",
            "Which language is officially spoken in {ref}?",
            "What language do people in {ref} officially use?",
        ),
        (
            F("Suriname", "Dutch", ("Portuguese", "English", "French")),
            F("Cape Verde", "Portuguese", ("French", "English")),
            F("Haiti", ("French", "Haitian Creole"), ("English", "Portuguese")),
            F("Costa Rica", "Spanish", ("Portuguese", "English", "Italian")),
            F("Nicaragua", "Spanish", ("Portuguese", "English")),
            F("Guatemala", "Spanish", ("Portuguese", "English")),
            F("Dominican Republic", "Spanish", ("French", "Portuguese", "English")),
            F("Ivory Coast", "French", ("English", "Portuguese")),
            F("Gabon", "French", ("English", "Portuguese")),
            F("Myanmar", "Burmese", ("Thai", "Bengali", "Khmer")),
            F("Sri Lanka", ("Sinhala", "Tamil"), ("Hindi", "Bengali", "Malay")),
            F("Andorra", "Catalan", ("French", "Portuguese", "Italian")),
            F("Liechtenstein", "German", ("French", "Italian", "Dutch")),
            F("Monaco", "French", ("Italian", "Catalan")),
            F("San Marino", "Italian", ("French", "German")),
            F("Mauritania", "Arabic", ("French", "Portuguese")),
            F("Somalia", ("Somali", "Arabic"), ("Swahili", "Amharic")),
            F("Tajikistan", "Tajik", ("Uzbek", "Kazakh", "Turkish")),
            F("Turkmenistan", "Turkmen", ("Uzbek", "Kazakh", "Persian")),
            F("Bhutan", "Dzongkha", ("Nepali", "Hindi", "Tibetan")),
            F("Maldives", "Dhivehi", ("Sinhala", "Hindi", "Tamil")),
            F("Samoa", ("Samoan", "English"), ("Tongan", "Fijian", "French")),
            F("Luxembourg", ("Luxembourgish", "French", "German"), ("Dutch", "Italian")),
            F("Belize", "English", ("Portuguese", "French")),
            F("Guyana", "English", ("Dutch", "Portuguese", "French")),
            F("Namibia", "English", ("German", "Portuguese", "French")),
        ),
    ),
    Relation(
        "currency_country",
        (
            "The {ref} is the currency of {value}.",
            "{value} uses the {ref} as its currency.",
            "People in {value} pay with the {ref}.",
        ),
        (
            "Which country uses the {ref} as its currency?",
            "In which country do people pay with the {ref}?",
            "The {ref} is the official currency of which country?",
        ),
        (
            F("rand", "South Africa", ("Botswana", "Namibia", "Zimbabwe")),
            F("baht", "Thailand", ("Laos", "Cambodia", "Myanmar")),
            F("won", ("South Korea", "North Korea"), ("China", "Taiwan", "Mongolia")),
            F("zloty", "Poland", ("Czech Republic", "Hungary", "Slovakia")),
            F("forint", "Hungary", ("Austria", "Romania", "Slovakia")),
            F("rupiah", "Indonesia", ("Malaysia", "Philippines", "India")),
            F("ringgit", "Malaysia", ("Indonesia", "Singapore", "Thailand")),
            F("shekel", "Israel", ("Jordan", "Lebanon", "Cyprus")),
            F("hryvnia", "Ukraine", ("Belarus", "Moldova", "Poland")),
            F("dong", "Vietnam", ("Cambodia", "Laos", "Thailand")),
            F("kwanza", "Angola", ("Mozambique", "Namibia", "Zambia")),
            F("naira", "Nigeria", ("Ghana", "Cameroon", "Senegal")),
            F("cedi", "Ghana", ("Nigeria", "Ivory Coast", "Togo")),
            F("birr", "Ethiopia", ("Eritrea", "Somalia", "Kenya")),
            F("kip", "Laos", ("Thailand", "Cambodia", "Myanmar")),
            F("riel", "Cambodia", ("Laos", "Vietnam", "Thailand")),
            F("tugrik", "Mongolia", ("Kazakhstan", "China", "Kyrgyzstan")),
            F("tenge", "Kazakhstan", ("Uzbekistan", "Mongolia", "Kyrgyzstan")),
            F("lev", "Bulgaria", ("Romania", "Serbia", "North Macedonia")),
            F("leu", ("Romania", "Moldova"), ("Bulgaria", "Hungary", "Serbia")),
            F("koruna", "Czech Republic", ("Poland", "Hungary", "Austria")),
            F("rouble", ("Russia", "Belarus"), ("Ukraine", "Kazakhstan", "Poland")),
            F("pula", "Botswana", ("South Africa", "Zimbabwe", "Namibia")),
            F("quetzal", "Guatemala", ("Honduras", "Mexico", "El Salvador")),
            F("colón", "Costa Rica", ("Panama", "Nicaragua", "Honduras")),
            F("guaraní", "Paraguay", ("Uruguay", "Bolivia", "Argentina")),
            F("lempira", "Honduras", ("Guatemala", "Nicaragua", "El Salvador")),
            F("taka", "Bangladesh", ("India", "Nepal", "Sri Lanka")),
            F("afghani", "Afghanistan", ("Pakistan", "Iran", "Tajikistan")),
            F("dram", "Armenia", ("Georgia", "Azerbaijan", "Iran")),
            F("lari", "Georgia", ("Armenia", "Azerbaijan", "Turkey")),
            F("somoni", "Tajikistan", ("Uzbekistan", "Kyrgyzstan", "Afghanistan")),
            F("ariary", "Madagascar", ("Mauritius", "Mozambique", "Kenya")),
            F("kwacha", ("Zambia", "Malawi"), ("Botswana", "Tanzania", "Mozambique")),
            F("yuan", "China", ("South Korea", "Vietnam", "Mongolia")),
            F("krona", ("Sweden", "Iceland"), ("Finland", "Estonia", "Latvia")),
            F("lira", ("Turkey", "Italy"), ("Greece", "Bulgaria", "Iran")),
            F("bolívar", "Venezuela", ("Colombia", "Ecuador", "Bolivia")),
        ),
    ),
    Relation(
        "book_author",
        ("{ref} was written by {value}.", "{value} wrote {ref}.", "{value} is the author of {ref}."),
        ("Who wrote {ref}?", "Who is the author of {ref}?", "Which writer wrote {ref}?"),
        (
            F("Jane Eyre", "Charlotte Brontë"),
            F("Wuthering Heights", "Emily Brontë"),
            F("Hamlet", "William Shakespeare"),
            F("Macbeth", "William Shakespeare"),
            F("Crime and Punishment", "Fyodor Dostoevsky"),
            F("The Brothers Karamazov", "Fyodor Dostoevsky"),
            F("Anna Karenina", "Leo Tolstoy"),
            F("Dracula", "Bram Stoker"),
            F("Great Expectations", "Charles Dickens"),
            F("Oliver Twist", "Charles Dickens"),
            F("A Christmas Carol", "Charles Dickens"),
            F("Sense and Sensibility", "Jane Austen"),
            F("Northanger Abbey", "Jane Austen"),
            F("Ulysses", "James Joyce"),
            F("Catch-22", "Joseph Heller"),
            F("To Kill a Mockingbird", "Harper Lee"),
            F("The Catcher in the Rye", "J. D. Salinger"),
            F("Brave New World", "Aldous Huxley"),
            F("Animal Farm", "George Orwell"),
            F("Lord of the Flies", "William Golding"),
            F("The Grapes of Wrath", "John Steinbeck"),
            F("Of Mice and Men", "John Steinbeck"),
            F("One Hundred Years of Solitude", "Gabriel García Márquez"),
            F("The Little Prince", "Antoine de Saint-Exupéry"),
            F("Madame Bovary", "Gustave Flaubert"),
            F("Heart of Darkness", "Joseph Conrad"),
            F("Treasure Island", "Robert Louis Stevenson"),
            F("The Count of Monte Cristo", "Alexandre Dumas"),
            F("The Three Musketeers", "Alexandre Dumas"),
            F("Middlemarch", "George Eliot"),
            F("Little Women", "Louisa May Alcott"),
            F("Fahrenheit 451", "Ray Bradbury"),
            F("Around the World in Eighty Days", "Jules Verne"),
            F("The Jungle Book", "Rudyard Kipling"),
            F("Peter Pan", "J. M. Barrie"),
            F("The Canterbury Tales", "Geoffrey Chaucer"),
            F("Paradise Lost", "John Milton"),
            F("Things Fall Apart", "Chinua Achebe"),
            F("The Prince", "Niccolò Machiavelli"),
            F("The Handmaid's Tale", "Margaret Atwood"),
            F("The Picture of Dorian Gray", "Oscar Wilde"),
            F("Mrs Dalloway", "Virginia Woolf"),
            F("Doctor Zhivago", "Boris Pasternak"),
            F("The Name of the Rose", "Umberto Eco"),
            F("The Alchemist", "Paulo Coelho"),
            F("Candide", "Voltaire"),
            F("Gone with the Wind", "Margaret Mitchell"),
            F("The Road", "Cormac McCarthy"),
            F("Beloved", "Toni Morrison"),
        ),
        persons=True,
    ),
    Relation(
        "painter",
        ("{ref} was painted by {value}.", "{value} painted {ref}.", "{ref} is a painting by {value}."),
        ("Who painted {ref}?", "Which artist painted {ref}?", "Who is the painter of {ref}?"),
        (
            F("The Starry Night", "Vincent van Gogh"),
            F("Sunflowers", "Vincent van Gogh"),
            F("The Scream", "Edvard Munch"),
            F("The Persistence of Memory", "Salvador Dalí"),
            F("The Birth of Venus", "Sandro Botticelli"),
            F("The Night Watch", "Rembrandt"),
            F("American Gothic", "Grant Wood"),
            F("The Great Wave off Kanagawa", "Hokusai"),
            F("Las Meninas", "Diego Velázquez"),
            F("The Garden of Earthly Delights", "Hieronymus Bosch"),
            F("The School of Athens", "Raphael"),
            F("Liberty Leading the People", "Eugène Delacroix"),
            F("The Arnolfini Portrait", "Jan van Eyck"),
            F("Impression, Sunrise", "Claude Monet"),
            F("Nighthawks", "Edward Hopper"),
            F("The Hay Wain", "John Constable"),
            F("The Third of May 1808", "Francisco Goya"),
            F("Olympia", "Édouard Manet"),
            F("The Son of Man", "René Magritte"),
            F("The Last Supper", "Leonardo da Vinci"),
            F("Wanderer above the Sea of Fog", "Caspar David Friedrich"),
            F("The Sleeping Gypsy", "Henri Rousseau"),
            F("The Swing", "Jean-Honoré Fragonard"),
            F("The Raft of the Medusa", "Théodore Géricault"),
            F("Whistlejacket", "George Stubbs"),
            F("The Fighting Temeraire", "J. M. W. Turner"),
        ),
        persons=True,
    ),
    Relation(
        "composer",
        ("{ref} was composed by {value}.", "{value} composed {ref}.", "{ref} is a work by the composer {value}."),
        ("Who composed {ref}?", "Which composer wrote {ref}?", "Who is the composer of {ref}?"),
        (
            F("The Nutcracker", "Pyotr Ilyich Tchaikovsky"),
            F("Swan Lake", "Pyotr Ilyich Tchaikovsky"),
            F("Messiah", "George Frideric Handel"),
            F("The Rite of Spring", "Igor Stravinsky"),
            F("Carmen", "Georges Bizet"),
            F("The Marriage of Figaro", "Wolfgang Amadeus Mozart"),
            F("La Traviata", "Giuseppe Verdi"),
            F("Aida", "Giuseppe Verdi"),
            F("The Blue Danube", "Johann Strauss II"),
            F("Clair de Lune", "Claude Debussy"),
            F("Boléro", "Maurice Ravel"),
            F("The Planets", "Gustav Holst"),
            F("Rhapsody in Blue", "George Gershwin"),
            F("The Barber of Seville", "Gioachino Rossini"),
            F("Madama Butterfly", "Giacomo Puccini"),
            F("Tosca", "Giacomo Puccini"),
            F("The Goldberg Variations", "Johann Sebastian Bach"),
            F("Peter and the Wolf", "Sergei Prokofiev"),
            F("Eine kleine Nachtmusik", "Wolfgang Amadeus Mozart"),
            F("Für Elise", "Ludwig van Beethoven"),
            F("Ride of the Valkyries", "Richard Wagner"),
            F("Finlandia", "Jean Sibelius"),
            F("Flight of the Bumblebee", "Nikolai Rimsky-Korsakov"),
            F("Canon in D", "Johann Pachelbel"),
            F("Gymnopédies", "Erik Satie"),
            F("Pictures at an Exhibition", "Modest Mussorgsky"),
            F("The Well-Tempered Clavier", "Johann Sebastian Bach"),
            F("Carnival of the Animals", "Camille Saint-Saëns"),
            F("Hungarian Rhapsody No. 2", "Franz Liszt"),
        ),
        persons=True,
    ),
    Relation(
        "element_symbol",
        (
            "The chemical symbol for {ref} is {value}.",
            "{value} is the chemical symbol of {ref}.",
            "On the periodic table, {ref} has the symbol {value}.",
        ),
        (
            "What is the chemical symbol for {ref}?",
            "Which symbol stands for {ref} on the periodic table?",
            "What is the symbol of {ref} in chemistry?",
        ),
        (
            F("silver", "Ag"),
            F("copper", "Cu"),
            F("sodium", "Na"),
            F("magnesium", "Mg"),
            F("calcium", "Ca"),
            F("chlorine", "Cl"),
            F("neon", "Ne"),
            F("argon", "Ar"),
            F("lithium", "Li"),
            F("silicon", "Si"),
            F("cobalt", "Co"),
            F("chromium", "Cr"),
            F("manganese", "Mn"),
            F("antimony", "Sb"),
            F("bismuth", "Bi"),
            F("barium", "Ba"),
            F("nickel", "Ni"),
            F("strontium", "Sr"),
            F("krypton", "Kr"),
            F("xenon", "Xe"),
            F("radon", "Rn"),
            F("beryllium", "Be"),
            F("cadmium", "Cd"),
            F("palladium", "Pd"),
            F("selenium", "Se"),
            F("gallium", "Ga"),
            F("rubidium", "Rb"),
            F("caesium", "Cs"),
            F("zirconium", "Zr"),
            F("iridium", "Ir"),
            F("osmium", "Os"),
            F("rhodium", "Rh"),
            F("titanium", "Ti"),
            F("plutonium", "Pu"),
        ),
    ),
    Relation(
        "moon_planet",
        ("{ref} is a moon of {value}.", "{ref} orbits the planet {value}.", "The moon {ref} circles {value}."),
        (
            "Which planet does {ref} orbit?",
            "{ref} is a moon of which planet?",
            "Around which planet does the moon {ref} travel?",
        ),
        (
            F("Titan", "Saturn"),
            F("Europa", "Jupiter"),
            F("Ganymede", "Jupiter"),
            F("Callisto", "Jupiter"),
            F("Phobos", "Mars"),
            F("Deimos", "Mars"),
            F("Triton", "Neptune"),
            F("Miranda", "Uranus"),
            F("Titania", "Uranus"),
            F("Oberon", "Uranus"),
            F("Enceladus", "Saturn"),
            F("Mimas", "Saturn"),
            F("Iapetus", "Saturn"),
            F("Rhea", "Saturn"),
            F("Ariel", "Uranus"),
            F("Umbriel", "Uranus"),
            F("Nereid", "Neptune"),
            F("Proteus", "Neptune"),
            F("Dione", "Saturn"),
            F("Hyperion", "Saturn"),
            F("Amalthea", "Jupiter"),
        ),
    ),
    Relation(
        "inventor",
        ("{ref} was invented by {value}.", "{value} invented {ref}.", "{value} is credited with inventing {ref}."),
        ("Who invented {ref}?", "Which inventor created {ref}?", "Who is credited with the invention of {ref}?"),
        (
            FT("light bulb", ("Thomas Edison", "Joseph Swan")),
            FT("printing press", "Johannes Gutenberg"),
            FT("radio", ("Guglielmo Marconi", "Nikola Tesla")),
            F("dynamite", "Alfred Nobel"),
            FT("phonograph", "Thomas Edison"),
            FT("electric telegraph", ("Samuel Morse", "William Cooke", "Charles Wheatstone")),
            FT("electric battery", "Alessandro Volta"),
            FT("lightning rod", "Benjamin Franklin"),
            FT("cotton gin", "Eli Whitney"),
            FT("revolver", "Samuel Colt"),
            FT("barometer", "Evangelista Torricelli"),
            FT("safety razor", "King Camp Gillette"),
            FT("ballpoint pen", "László Bíró"),
            FT("stethoscope", "René Laennec"),
            FT("hovercraft", "Christopher Cockerell"),
            FT("computer mouse", "Douglas Engelbart"),
            FT("jet engine", ("Frank Whittle", "Hans von Ohain")),
            F("television", ("John Logie Baird", "Philo Farnsworth")),
            FT("spinning jenny", "James Hargreaves"),
            FT("saxophone", "Adolphe Sax"),
            FT("pendulum clock", "Christiaan Huygens"),
            FT("crossword puzzle", "Arthur Wynne"),
        ),
        persons=True,
    ),
    Relation(
        "landmark_city",
        ("{ref} is located in {value}.", "{ref} stands in the city of {value}.", "You can visit {ref} in {value}."),
        ("In which city is {ref} located?", "Where would I go to see {ref}?", "Which city is home to {ref}?"),
        (
            F("Big Ben", "London", ("Manchester", "Edinburgh", "Dublin")),
            FT("Colosseum", "Rome", ("Milan", "Naples", "Athens")),
            FT("Taj Mahal", "Agra", ("Delhi", "Mumbai", "Jaipur")),
            FT("Acropolis", "Athens", ("Thessaloniki", "Istanbul", "Sparta")),
            FT("Brandenburg Gate", "Berlin", ("Munich", "Vienna", "Hamburg")),
            FT("Kremlin", "Moscow", ("Saint Petersburg", "Kyiv", "Minsk")),
            FT("Sagrada Família", "Barcelona", ("Madrid", "Valencia", "Lisbon")),
            F(
                "Christ the Redeemer",
                "Rio de Janeiro",
                ("São Paulo", "Buenos Aires", "Lisbon"),
                "the Christ the Redeemer statue",
            ),
            FT("Golden Gate Bridge", "San Francisco", ("Los Angeles", "Seattle", "San Diego")),
            FT("Louvre", "Paris", ("Marseille", "Brussels", "Geneva")),
            FT("Alhambra", "Granada", ("Seville", "Córdoba", "Toledo")),
            FT("Forbidden City", "Beijing", ("Shanghai", "Nanjing", "Xi'an")),
            FT("Little Mermaid statue", "Copenhagen", ("Oslo", "Stockholm", "Amsterdam")),
            FT("Space Needle", "Seattle", ("Portland", "Vancouver", "San Francisco")),
            FT("CN Tower", "Toronto", ("Montreal", "Vancouver", "Ottawa")),
            F("Hagia Sophia", "Istanbul", ("Ankara", "Athens", "Izmir")),
            FT("Atomium", "Brussels", ("Antwerp", "Amsterdam", "Paris")),
            F("Manneken Pis", "Brussels", ("Bruges", "Ghent", "Antwerp")),
            FT("Gateway Arch", "St. Louis", ("Kansas City", "Denver", "Memphis")),
            FT("Rijksmuseum", "Amsterdam", ("Rotterdam", "The Hague", "Brussels")),
            FT("Prado Museum", "Madrid", ("Barcelona", "Seville", "Lisbon")),
            FT("Uffizi Gallery", "Florence", ("Venice", "Milan", "Turin")),
            F("St. Mark's Basilica", "Venice", ("Florence", "Milan", "Naples")),
            F("Tower Bridge", "London", ("Liverpool", "Bristol", "Edinburgh")),
            FT("Charles Bridge", "Prague", ("Vienna", "Budapest", "Bratislava")),
            FT("Empire State Building", "New York", ("Boston", "Philadelphia", "Washington, D.C.")),
            FT("Trevi Fountain", "Rome", ("Florence", "Milan", "Naples")),
            FT("Arc de Triomphe", "Paris", ("Brussels", "Marseille", "Bordeaux")),
            F("Buckingham Palace", "London", ("Windsor", "Edinburgh", "Manchester")),
            F("Red Square", "Moscow", ("Saint Petersburg", "Kyiv", "Warsaw")),
            FT("Potala Palace", "Lhasa", ("Kathmandu", "Chengdu", "Beijing")),
            FT("Burj Al Arab", "Dubai", ("Abu Dhabi", "Doha", "Riyadh")),
            F("Schönbrunn Palace", "Vienna", ("Salzburg", "Munich", "Budapest")),
            FT("Reichstag building", "Berlin", ("Bonn", "Hamburg", "Vienna")),
            F("Wawel Castle", "Kraków", ("Warsaw", "Prague", "Gdańsk")),
            F("Topkapı Palace", "Istanbul", ("Ankara", "Athens", "Cairo")),  # noqa: RUF001 (Turkish dotless i: the name's own spelling)
            FT("Parthenon", "Athens", ("Rome", "Sparta", "Thessaloniki")),
        ),
    ),
    Relation(
        "city_river",
        (
            "The river that flows through {ref} is the {value}.",
            "{ref} lies on the {value}.",
            "The {value} flows through {ref}.",
        ),
        (
            "Which river flows through {ref}?",
            "On which river does {ref} lie?",
            "What is the name of the river that runs through {ref}?",
        ),
        (
            F("Florence", "Arno", ("Tiber", "Po")),
            F("Lisbon", "Tagus", ("Douro", "Guadiana")),
            F("Cologne", "Rhine", ("Elbe", "Danube", "Weser")),
            F("Dresden", "Elbe", ("Oder", "Rhine", "Spree")),
            F("Hamburg", "Elbe", ("Rhine", "Weser")),
            F("Varanasi", "Ganges", ("Indus", "Brahmaputra")),
            F("Seville", "Guadalquivir", ("Ebro", "Tagus")),
            F("Bordeaux", "Garonne", ("Loire", "Rhône", "Seine")),
            F("Belgrade", ("Danube", "Sava"), ("Drina", "Morava")),
            F("Bratislava", "Danube", ("Vltava", "Vistula")),
            F("Kyiv", "Dnieper", ("Volga", "Don")),
            F("Saint Petersburg", "Neva", ("Volga", "Moskva", "Dvina")),
            F("Kraków", "Vistula", ("Oder", "Vltava")),
            F("Montreal", "St. Lawrence", ("Hudson", "Ottawa")),
            F("New Orleans", "Mississippi", ("Missouri", "Ohio", "Colorado")),
            F("Khartoum", "Nile", ("Niger", "Congo")),
            F("Phnom Penh", "Mekong", ("Irrawaddy", "Chao Phraya")),
            F("Basel", "Rhine", ("Rhône", "Aare")),
            F("Geneva", "Rhône", ("Rhine", "Aare")),
            F("Glasgow", "Clyde", ("Tay", "Forth")),
            F("Newcastle", "Tyne", ("Tees", "Wear")),
            F("Oxford", "Thames", ("Severn", "Trent", "Avon")),
            F("Avignon", "Rhône", ("Loire", "Garonne")),
            F("Porto", "Douro", ("Tagus", "Minho")),
            F("Zaragoza", "Ebro", ("Tagus", "Guadalquivir")),
            F("Nantes", "Loire", ("Seine", "Garonne")),
            F("Riga", "Daugava", ("Neris", "Neva")),
            F("Wrocław", "Oder", ("Vistula", "Elbe")),
            F("Verona", "Adige", ("Po", "Arno")),
        ),
    ),
    Relation(
        "mountain_country",
        ("{ref} is located in {value}.", "{ref} rises in {value}.", "{ref} is a mountain in {value}."),
        ("In which country is {ref}?", "{ref} lies within which country?", "Which country is {ref} in?"),
        (
            F("Mount Fuji", "Japan", ("China", "South Korea")),
            F("Mont Blanc", ("France", "Italy"), ("Switzerland", "Austria")),
            F("Matterhorn", ("Switzerland", "Italy"), ("Austria", "France"), "the Matterhorn"),
            F("Mount Etna", "Italy", ("Greece", "Spain")),
            F("Mount Olympus", "Greece", ("Turkey", "Italy", "Cyprus")),
            F("Aconcagua", "Argentina", ("Chile", "Bolivia")),
            F("Denali", "United States", ("Russia", "Iceland")),
            F("Table Mountain", "South Africa", ("Namibia", "Kenya")),
            F("Mount Ararat", "Turkey", ("Armenia", "Iran")),
            F("Mount Sinai", "Egypt", ("Israel", "Jordan")),
            F("Ben Nevis", ("United Kingdom", "Scotland"), ("Ireland", "Iceland")),
            F("K2", ("Pakistan", "China"), ("India", "Nepal")),
            F("Mount Elbrus", "Russia", ("Georgia", "Ukraine")),
            F("Aoraki", "New Zealand", ("Chile", "Argentina")),
            F("Uluru", "Australia", ("South Africa", "New Zealand")),
            F("Zugspitze", "Germany", ("Austria", "Switzerland")),
            F("Mount Teide", "Spain", ("Portugal", "Morocco")),
            F("Pico de Orizaba", "Mexico", ("Guatemala", "Colombia")),
            F("Mount Kinabalu", "Malaysia", ("Indonesia", "Philippines")),
            F("Chimborazo", "Ecuador", ("Colombia", "Bolivia")),
            F("Cotopaxi", "Ecuador", ("Colombia", "Bolivia")),
            F("Mount Rainier", "United States", ("Mexico", "Russia")),
            F("Mount Kosciuszko", "Australia", ("New Zealand", "Poland")),
            F("Toubkal", "Morocco", ("Algeria", "Tunisia")),
            F("Galdhøpiggen", "Norway", ("Sweden", "Finland")),
        ),
    ),
    Relation(
        "event_year",
        ("{ref} took place in {value}.", "{ref} happened in {value}.", "In {value}, {ref} took place."),
        ("In what year did {ref} take place?", "When did {ref} happen?", "In which year did {ref} occur?"),
        (
            FT("Battle of Hastings", "1066"),
            FT("Great Fire of London", "1666"),
            FT("fall of Constantinople", "1453"),
            FT("Battle of Waterloo", "1815"),
            FT("first modern Olympic Games", "1896"),
            FT("Chernobyl disaster", "1986"),
            FT("founding of the United Nations", "1945"),
            FT("signing of the Treaty of Versailles", "1919"),
            FT("Wall Street Crash", "1929"),
            FT("Battle of Trafalgar", "1805"),
            FT("Gunpowder Plot", "1605"),
            FT("Russian Revolution", "1917"),
            FT("defeat of the Spanish Armada", "1588"),
            FT("Wright brothers' first powered flight", "1903"),
            FT("Battle of Gettysburg", "1863"),
            FT("sinking of the Lusitania", "1915"),
            FT("Boston Tea Party", "1773"),
            FT("eruption of Krakatoa", "1883"),
            FT("Great Plague of London", "1665"),
            FT("Battle of Agincourt", "1415"),
            FT("Cuban Missile Crisis", "1962"),
            FT("opening of the Suez Canal", "1869"),
            FT("opening of the Panama Canal", "1914"),
            FT("first FIFA World Cup", "1930"),
            FT("Hindenburg disaster", "1937"),
            FT("Battle of Bannockburn", "1314"),
            FT("Peace of Westphalia", "1648"),
            FT("Treaty of Tordesillas", "1494"),
            FT("Battle of Lepanto", "1571"),
            FT("Glorious Revolution", "1688"),
            FT("Meiji Restoration", "1868"),
            FT("founding of the Red Cross", "1863"),
            FT("Easter Rising", "1916"),
            FT("fall of Saigon", "1975"),
            FT("signing of the Good Friday Agreement", "1998"),
        ),
        numeric=shifted_year,
    ),
    Relation(
        "company_founder",
        ("{ref} was founded by {value}.", "{value} founded {ref}.", "{value} is the founder of {ref}."),
        ("Who founded {ref}?", "Who is the founder of {ref}?", "Which entrepreneur started {ref}?"),
        (
            F("Microsoft", ("Bill Gates", "Paul Allen")),
            F("Apple", ("Steve Jobs", "Steve Wozniak", "Ronald Wayne")),
            F(
                "Facebook",
                ("Mark Zuckerberg", "Eduardo Saverin", "Dustin Moskovitz", "Chris Hughes", "Andrew McCollum"),
            ),
            F("Google", ("Larry Page", "Sergey Brin")),
            F("SpaceX", "Elon Musk"),
            F("Wikipedia", ("Jimmy Wales", "Larry Sanger")),
            F("IKEA", "Ingvar Kamprad"),
            F("Virgin Group", "Richard Branson"),
            F("Netflix", ("Reed Hastings", "Marc Randolph")),
            F("Oracle", ("Larry Ellison", "Bob Miner", "Ed Oates")),
            F("LEGO", "Ole Kirk Christiansen"),
            F("Nike", ("Phil Knight", "Bill Bowerman")),
            F("Walmart", "Sam Walton"),
            F("Sony", ("Masaru Ibuka", "Akio Morita")),
            F("Zara", ("Amancio Ortega", "Rosalía Mera")),
            F("Instagram", ("Kevin Systrom", "Mike Krieger")),
            F("Nvidia", ("Jensen Huang", "Chris Malachowsky", "Curtis Priem")),
            F("Twitter", ("Jack Dorsey", "Biz Stone", "Evan Williams", "Noah Glass")),
            F("Airbnb", ("Brian Chesky", "Joe Gebbia", "Nathan Blecharczyk")),
            F("WhatsApp", ("Jan Koum", "Brian Acton")),
        ),
        persons=True,
    ),
    Relation(
        "birthplace",
        ("{ref} was born in {value}.", "{value} is the birthplace of {ref}.", "{ref} was a native of {value}."),
        ("In which country was {ref} born?", "What is {ref}'s country of birth?", "Where was {ref} born?"),
        (
            F("Frida Kahlo", "Mexico"),
            F("Charlie Chaplin", ("England", "United Kingdom")),
            F("Frédéric Chopin", "Poland"),
            F("Hans Christian Andersen", "Denmark"),
            F("Gabriel García Márquez", "Colombia"),
            F("Pablo Neruda", "Chile"),
            F("Jean Sibelius", "Finland"),
            F("Henrik Ibsen", "Norway"),
            F("Fyodor Dostoevsky", "Russia"),
            F("Confucius", "China"),
            F("Bob Marley", "Jamaica"),
            F("Agatha Christie", ("England", "United Kingdom")),
            F("William Shakespeare", ("England", "United Kingdom")),
            F("Galileo Galilei", "Italy"),
            F("Che Guevara", "Argentina"),
            F("Simón Bolívar", "Venezuela"),
            F("Rabindranath Tagore", "India"),
            F("Wolfgang Amadeus Mozart", "Austria"),
            F("Salvador Dalí", "Spain"),
            F("Alfred Nobel", "Sweden"),
            F("Astrid Lindgren", "Sweden"),
            F("Wangari Maathai", "Kenya"),
            F("Kofi Annan", "Ghana"),
            F("Haile Gebrselassie", "Ethiopia"),
            F("Leo Tolstoy", "Russia"),
            F("Akira Kurosawa", "Japan"),
            F("Ingrid Bergman", "Sweden"),
            F("Audrey Hepburn", "Belgium"),
            F("Greta Garbo", "Sweden"),
            F("Diego Maradona", "Argentina"),
            F("Usain Bolt", "Jamaica"),
            F("Roger Federer", "Switzerland"),
            F("Fernando Pessoa", "Portugal"),
            F("Jorge Luis Borges", "Argentina"),
            F("Edvard Munch", "Norway"),
            F("Antoni Gaudí", "Spain"),
            F("Marco Polo", "Italy"),
            F("Rembrandt", "Netherlands"),
        ),
        extra_pool=(
            "France",
            "Germany",
            "Greece",
            "Ireland",
            "Hungary",
            "Czech Republic",
            "Egypt",
            "Nigeria",
            "Turkey",
            "Cuba",
            "South Africa",
            "Mexico",
            "Iceland",
            "Croatia",
        ),
    ),
    Relation(
        "boiling_point",
        (
            "{ref} boils at {value} degrees Celsius.",
            "The boiling point of {ref} is {value} degrees Celsius.",
            "At sea level, {ref} boils at {value} °C.",
        ),
        (
            "At what temperature does {ref} boil?",
            "What is the boiling point of {ref} in degrees Celsius?",
            "How many degrees Celsius does {ref} need to reach to boil?",
        ),
        (
            F("ethanol", "78"),
            F("acetone", "56"),
            F("methanol", "65"),
            F("benzene", "80"),
            F("chloroform", "61"),
            F("glycerol", "290"),
            F("hexane", "69"),
            F("diethyl ether", "35"),
            F("toluene", "111"),
            F("bromine", "59"),
        ),
        numeric=scaled,
    ),
    Relation(
        "melting_point",
        (
            "{ref} melts at {value} degrees Celsius.",
            "The melting point of {ref} is {value} degrees Celsius.",
            "{ref} turns liquid at {value} °C.",
        ),
        (
            "At what temperature does {ref} melt?",
            "What is the melting point of {ref}?",
            "At how many degrees Celsius does {ref} become liquid?",
        ),
        (
            F("lead", "327"),
            F("tin", "232"),
            F("aluminium", "660"),
            F("zinc", "420"),
            F("tungsten", "3422"),
            F("platinum", "1768"),
            F("sulfur", "115"),
            F("iridium metal", "2446"),
        ),
        numeric=scaled,
    ),
    Relation(
        "legs",
        ("{ref} has {value} legs.", "{ref} walks on {value} legs.", "The number of legs on {ref} is {value}."),
        ("How many legs does {ref} have?", "On how many legs does {ref} walk?", "What is the number of legs of {ref}?"),
        (
            F("spider", "8", ref="a spider"),
            F("ant", "6", ref="an ant"),
            F("crab", "10", ref="a crab"),
            F("lobster", "10", ref="a lobster"),
            F("scorpion", "8", ref="a scorpion"),
            F("beetle", "6", ref="a beetle"),
            F("honeybee", "6", ref="a honeybee"),
            F("tick", "8", ref="a tick"),
            F("shrimp", "10", ref="a shrimp"),
            F("ostrich", "2", ref="an ostrich"),
            F("grasshopper", "6", ref="a grasshopper"),
            F("butterfly", "6", ref="a butterfly"),
        ),
        numeric=even_count,
    ),
    Relation(
        "team_size",
        (
            "Each {ref} team has {value} players in play at once.",
            "In {ref}, each team fields {value} players at a time.",
            "Each side in {ref} has {value} players in play.",
        ),
        (
            "How many players does each {ref} team have in play at once?",
            "In {ref}, how many players does each team field at a time?",
            "How many players per side are in play in {ref}?",
        ),
        (
            F("basketball", "5"),
            F("volleyball", "6"),
            F("rugby union", "15"),
            F("ice hockey", "6"),
            F("water polo", "7"),
            F("handball", "7"),
            F("baseball", "9"),
            F("netball", "7"),
            F("cricket", "11"),
            F("polo", "4"),
            F("hurling", "15"),
            F("lacrosse", "10"),
            F("field hockey", "11"),
            F("beach volleyball", "2"),
            F("curling", "4"),
        ),
        numeric=small_count,
    ),
    Relation(
        "discovery",
        (
            "{value} discovered {ref}.",
            "{value} is credited with discovering {ref}.",
            "The discovery of {ref} is credited to {value}.",
        ),
        ("Who discovered {ref}?", "Which scientist discovered {ref}?", "Who is credited with the discovery of {ref}?"),
        (
            F("X-rays", "Wilhelm Röntgen"),
            F("radioactivity", "Henri Becquerel"),
            F("Uranus", "William Herschel", ref="the planet Uranus"),
            F("Pluto", "Clyde Tombaugh"),
            F("circulation of the blood", "William Harvey", ref="the circulation of the blood"),
            F("four largest moons of Jupiter", "Galileo Galilei", ref="the four largest moons of Jupiter"),
        ),
        persons=True,
        extra_pool=(
            "Michael Faraday",
            "Ernest Rutherford",
            "Niels Bohr",
            "Max Planck",
            "James Clerk Maxwell",
            "Edwin Hubble",
            "Louis Pasteur",
            "Robert Koch",
        ),
    ),
)


# =============================================================================================
# Locality questions (general knowledge, unrelated to the facts; written for this project)
# =============================================================================================

LOCALITY: tuple[tuple[str, str], ...] = (
    # geography
    ("Which is the largest continent by area?", "Asia"),
    ("What is the longest river in Africa?", "Nile"),
    ("On which continent is the Amazon rainforest?", "South America"),
    ("What is the largest lake in Africa?", "Lake Victoria"),
    ("In which ocean does the Gulf Stream flow?", "Atlantic"),
    ("What is the deepest ocean trench on Earth?", "Mariana Trench"),
    ("Which line of latitude divides Earth into northern and southern hemispheres?", "equator"),
    ("What is the name of the line at 0 degrees longitude?", "prime meridian"),
    ("Which is the coldest continent?", "Antarctica"),
    ("What is the longest river in Asia?", "Yangtze"),
    ("Which very salty lake lies at the lowest land point on Earth?", "Dead Sea"),
    ("How many continents are there?", "7"),
    ("What is the largest island in the Mediterranean Sea?", "Sicily"),
    ("What is the highest waterfall in the world?", "Angel Falls"),
    ("Which US state is made up entirely of islands in the Pacific?", "Hawaii"),
    ("What is the largest US state by area?", "Alaska"),
    ("Which mountain range runs along the west coast of South America?", "Andes"),
    ("Which is the smallest of the world's oceans?", "Arctic"),
    ("Which strait separates Asia from North America?", "Bering Strait"),
    ("What is the world's largest coral reef system called?", "Great Barrier Reef"),
    ("In which country is the city of Timbuktu?", "Mali"),
    ("What is the largest freshwater lake in North America by surface area?", "Lake Superior"),
    ("Which mountain range separates France from Spain?", "Pyrenees"),
    ("Which desert covers much of northern Chile?", "Atacama"),
    ("What is the name of the sea between Italy and the Balkans?", "Adriatic"),
    ("Which river flows through Vienna and Budapest?", "Danube"),
    ("What are the Seychelles: a group of islands or a mountain range?", "islands"),
    # science
    ("Which planet is closest to the Sun?", "Mercury"),
    ("How many chromosomes do humans normally have?", "46"),
    ("What is the SI unit of electric current?", "ampere"),
    ("What is the SI unit of force?", "newton"),
    ("What is the SI unit of energy?", "joule"),
    ("What is the SI unit of power?", "watt"),
    ("What is the SI unit of frequency?", "hertz"),
    ("What does DNA stand for?", "deoxyribonucleic acid"),
    ("Which blood type is known as the universal donor?", "O negative"),
    ("Which gas makes up most of the Sun?", "hydrogen"),
    ("Which large spiral galaxy is the Milky Way's nearest major neighbour?", "Andromeda"),
    ("How many hearts does an octopus have?", "3"),
    ("Which part of the eye controls how much light enters it?", "iris"),
    ("What is the study of fungi called?", "mycology"),
    ("What type of rock forms when lava cools?", "igneous"),
    ("Which vitamin is found in large amounts in oranges and lemons?", "vitamin C"),
    ("Which organ pumps blood around the body?", "heart"),
    ("What are animals that eat only plants called?", "herbivores"),
    ("What is the process by which a gas turns into a liquid called?", "condensation"),
    ("How many teeth does an adult human usually have?", "32"),
    ("What do bees collect from flowers to make honey?", "nectar"),
    ("What is the force that opposes motion between two surfaces called?", "friction"),
    ("What is the centre of an atom called?", "nucleus"),
    ("Which scientist proposed the three laws of planetary motion?", "Kepler"),
    ("What is the name of the pigment that makes plants green?", "chlorophyll"),
    ("What instrument measures earthquakes?", "seismometer"),
    ("At what temperature in Celsius is absolute zero?", "-273.15"),
    ("What is the chemical formula of methane?", "CH4"),
    ("Which kind of animal is a frog: amphibian or reptile?", "amphibian"),
    ("What is the largest internal organ of the human body?", "liver"),
    ("What is the main gas that humans breathe out in larger amounts than they breathe in?", "carbon dioxide"),
    ("Which scientist is famous for the equation E = mc squared?", "Einstein"),
    # history
    ("Who was the first Roman emperor?", "Augustus"),
    ("In which year did the First World War begin?", "1914"),
    ("Which British prime minister led the country from 1940 to 1945?", "Churchill"),
    ("Which ancient wonder stood at the harbour of Rhodes?", "Colossus"),
    ("Whose tomb did Howard Carter open in 1922?", "Tutankhamun"),
    ("Which ship carried the Pilgrims to America in 1620?", "Mayflower"),
    ("Who was the first woman to fly solo across the Atlantic?", "Amelia Earhart"),
    ("Who led the Soviet Union from the late 1920s until 1953?", "Stalin"),
    ("Which English queen was known as the Virgin Queen?", "Elizabeth I"),
    ("Which explorer led the first expedition to reach the South Pole?", "Amundsen"),
    ("Which Greek philosopher taught Alexander the Great?", "Aristotle"),
    ("Who was the Roman god of war?", "Mars"),
    ("In which country did the ancient Olympic Games begin?", "Greece"),
    ("Which ancient civilisation wrote in hieroglyphs?", "Egyptians"),
    ("Which wall was built across northern England by the Romans?", "Hadrian's Wall"),
    ("Which Carthaginian general crossed the Alps with elephants?", "Hannibal"),
    ("Which dynasty built most of the Great Wall of China that stands today?", "Ming"),
    ("Who was the first president of independent Kenya?", "Jomo Kenyatta"),
    ("Which Viking explorer is said to have reached North America around the year 1000?", "Leif Erikson"),
    # literature
    ("Who wrote The Chronicles of Narnia?", "C. S. Lewis"),
    ("Who wrote Charlie and the Chocolate Factory?", "Roald Dahl"),
    ("Who wrote Winnie-the-Pooh?", "A. A. Milne"),
    ("Who wrote The Wind in the Willows?", "Kenneth Grahame"),
    ("Who wrote The Secret Garden?", "Frances Hodgson Burnett"),
    ("Who wrote Black Beauty?", "Anna Sewell"),
    ("Who wrote The Time Machine?", "H. G. Wells"),
    ("Who wrote Vanity Fair?", "Thackeray"),
    ("Who wrote The Scarlet Letter?", "Hawthorne"),
    ("Who wrote Siddhartha?", "Hermann Hesse"),
    ("Who wrote the Aeneid?", "Virgil"),
    ("Which Shakespeare play features the moneylender Shylock?", "The Merchant of Venice"),
    ("Who wrote the poem The Road Not Taken?", "Robert Frost"),
    ("Who wrote the poem I Wandered Lonely as a Cloud?", "Wordsworth"),
    ("Who wrote The Diary of a Young Girl?", "Anne Frank"),
    ("Who wrote the play A Doll's House?", "Ibsen"),
    ("Who wrote The Call of the Wild?", "Jack London"),
    ("Who wrote The Hunger Games?", "Suzanne Collins"),
    ("Who created the detective Hercule Poirot?", "Agatha Christie"),
    ("In which city is James Joyce's Ulysses set?", "Dublin"),
    # maths
    ("What is 6 multiplied by 7?", "42"),
    ("What is the square root of 81?", "9"),
    ("What is 25 percent of 80?", "20"),
    ("How many sides does a hexagon have?", "6"),
    ("How many degrees are in a right angle?", "90"),
    ("What is 3 cubed?", "27"),
    ("What is 1000 divided by 8?", "125"),
    ("What is the next prime number after 7?", "11"),
    ("How many millimetres are in a centimetre?", "10"),
    ("How many seconds are in a minute?", "60"),
    ("What is 17 plus 26?", "43"),
    ("What is 2 to the power of 10?", "1024"),
    ("Which number does the Roman numeral L stand for?", "50"),
    ("How many minutes are in two hours?", "120"),
    ("What is a triangle with three equal sides called?", "equilateral"),
    ("How many faces does a cube have?", "6"),
    ("What is 11 multiplied by 11?", "121"),
    ("What is 13 squared?", "169"),
    ("What is 0.5 written as a fraction?", "1/2"),
    ("How many centimetres are in a metre?", "100"),
    ("What is the sum of the angles inside a quadrilateral in degrees?", "360"),
    # language
    ("What is the plural of goose?", "geese"),
    ("What is the past tense of the verb run?", "ran"),
    ("What is the French word for cheese?", "fromage"),
    ("What is the Italian word for thank you?", "grazie"),
    ("What is the German word for thank you?", "danke"),
    ("What is the plural of child?", "children"),
    ("What is the past tense of the verb swim?", "swam"),
    ("What is a word that means the same as another word called?", "synonym"),
    ("What is a word with the opposite meaning of another called?", "antonym"),
    ("How many vowels are in the English alphabet?", "5"),
    ("What is the comparative form of good?", "better"),
    ("What is the German word for cat?", "Katze"),
    ("What is the French word for bread?", "pain"),
    ("What is the plural of cactus?", "cacti"),
    ("What is a baby kangaroo called?", "joey"),
    ("What is a group of lions called?", "pride"),
    ("What is a female horse called?", "mare"),
    ("What is a young sheep called?", "lamb"),
    ("What is the Japanese word for thank you?", "arigatou"),
    ("What is the opposite of the word generous?", "stingy"),
    # everyday knowledge
    ("How many strings does a standard guitar have?", "6"),
    ("How many squares are on a chessboard?", "64"),
    ("What colour are emeralds?", "green"),
    ("What is the main ingredient in bread?", "flour"),
    ("How many rings are on the Olympic flag?", "5"),
    ("Which sport is played at Wimbledon?", "tennis"),
    ("How many days are there in a fortnight?", "14"),
    ("Which bird is a symbol of peace?", "dove"),
    ("What is the largest species of shark?", "whale shark"),
    ("How many hours are in a week?", "168"),
    ("What is the fastest bird in a dive?", "peregrine falcon"),
    ("What is the largest living land animal?", "African elephant"),
    ("What is a group of crows called?", "murder"),
    ("What does a thermometer measure?", "temperature"),
    ("Which planet is nicknamed the Morning Star?", "Venus"),
    ("How many cards are in a standard deck without jokers?", "52"),
    ("What is the main ingredient of a traditional omelette?", "eggs"),
    ("Which organ do fish use to breathe?", "gills"),
    ("Which layer of the atmosphere protects Earth from most ultraviolet rays?", "ozone layer"),
    ("What do tadpoles grow into?", "frogs"),
    ("How many years are in a century?", "100"),
    ("How many sides does a pentagon have?", "5"),
    ("Which sea creature has eight arms and can squirt ink?", "octopus"),
    ("Which organs filter the blood to make urine?", "kidneys"),
    ("What is the name of the galaxy we live in?", "Milky Way"),
    ("Which planet is famous for its Great Red Spot?", "Jupiter"),
)


# =============================================================================================
# Guarding against the evaluation set
# =============================================================================================

# Capitalised words in evaluation subjects that are ordinary English words, not names; an invented
# subject may contain these (every other capitalised word of an evaluation subject is a name).
GENERIC_WORDS = frozenset(
    """
The My Our New Old Long Open Pale Public Grand General Northern Secondary International Solar World War
Academy Accord Air Airlines Airport Allotments Analytics Aquarium Arts Authority Biotech Book Brewing Bridge Building
Café Castle Centre Chess Circuit Clinic Club Community Confederacy Cooperative Cross Cup Dam Dawn Empire Fair Farm
Ferries Ferry Foods Foundation Fund Games Glass Gym Harvest Hill Hospice Hospital Hotel Institute Instruments Insurance
Island Lake Lane Library Logistics Mall Marathon Mobility Mount Museum Night Observatory Orchestra Pool Port Press Pro
Range Reach Realms Regatta Ridge Robotics Rock School Stadium Station Statue Summit Symphony System Systems Theatre
Tower Treaty University Valley Water Lantern Salt Saffron Sorrel Cobalt Sparrow Cinder Drift Glacier Quarry Orchard
Patience Spire Cobble Liberty Wi-Fi
""".split()
)


@dataclass
class EvalGuard:
    """What the training set must not reuse from the evaluation file."""

    subjects: frozenset[str]  # case-folded subjects and targets (a train subject may be neither)
    targets: frozenset[str]  # case-folded targets and subjects (a train target may be neither)
    statements: frozenset[str]
    locality_prompts: frozenset[str]
    locality_answers: frozenset[str]
    name_words: frozenset[str]  # distinctive words of evaluation subjects ("Brightwater", "Kestrel")
    counterfactual_subjects: tuple[str, ...]
    counterfactual_targets: tuple[str, ...]
    text: str  # every statement and question of the file, for real-world subject checks

    @classmethod
    def load(cls, path: Path) -> EvalGuard:
        """Read ``facts.jsonl`` and collect what must not be reused."""
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        subjects = {r["subject"].casefold() for r in rows}
        targets = {r["target"].casefold() for r in rows}
        name_words = {
            w for r in rows for w in words(r["subject"]) if w[:1].isupper() and len(w) > 2 and w not in GENERIC_WORDS
        }
        text = "\n".join(r[k] for r in rows for k in ("statement", "prompt", "rephrase", "locality_prompt"))
        return cls(
            subjects=frozenset(subjects | targets),
            targets=frozenset(targets | subjects),
            statements=frozenset(r["statement"].casefold() for r in rows),
            locality_prompts=frozenset(r["locality_prompt"].casefold() for r in rows),
            locality_answers=frozenset(r["locality_answer"].casefold() for r in rows),
            name_words=frozenset(name_words),
            counterfactual_subjects=tuple(r["subject"] for r in rows if r["category"] == "counterfactual"),
            counterfactual_targets=tuple(r["target"] for r in rows if r["category"] == "counterfactual"),
            text=text,
        )

    def real_subject_allowed(self, subject: str) -> bool:
        """A real-world subject may be used only if the evaluation file never mentions it."""
        key = subject.casefold()
        return (
            key not in self.subjects
            and key not in self.locality_answers
            and not contains_phrase(self.text, subject, case_sensitive=False)
        )

    def value_allowed(self, value: str, target: str) -> bool:
        """Whether a counterfactual value avoids evaluation targets and subjects."""
        return target.casefold() not in self.targets and not any(
            contains_phrase(value, s, case_sensitive=True) for s in self.counterfactual_subjects
        )


def words(text: str) -> list[str]:
    """The whitespace-separated words of ``text`` without surrounding punctuation."""
    return [w.strip('.,;:!?"()') for w in text.split()]


def contains_phrase(text: str, phrase: str, case_sensitive: bool) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words."""
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text, flags) is not None


# =============================================================================================
# Building records
# =============================================================================================


def make_record(category: str, statement: str, subject: str, target: str, prompt: str, rephrase: str) -> dict[str, str]:
    """A record with the subject spelled as it appears in the statement (capitalised at the start)."""
    statement = cap(statement)
    if subject not in statement and cap(subject) in statement:
        subject = cap(subject)
    return {
        "statement": statement,
        "subject": subject,
        "target": target,
        "prompt": cap(prompt),
        "rephrase": cap(rephrase),
        "locality_prompt": "",
        "locality_answer": "",
        "category": category,
    }


def record_problems(rec: Mapping[str, str], guard: EvalGuard) -> list[str]:
    """Every rule a single record must satisfy (locality fields are checked separately)."""
    problems: list[str] = []
    statement, subject, target = rec["statement"], rec["subject"], rec["target"]
    for key in FIELDS:
        if key.startswith("locality"):
            continue
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            problems.append(f"empty field {key}")
    if target.casefold() not in statement.casefold():
        problems.append("target not in statement")
    if target.casefold() in rec["prompt"].casefold() or target.casefold() in rec["rephrase"].casefold():
        problems.append("target in a question")
    if subject not in statement:
        problems.append("subject not in statement")
    if rec["prompt"] == rec["rephrase"]:
        problems.append("prompt == rephrase")
    if not statement.endswith(".") or not rec["prompt"].endswith("?") or not rec["rephrase"].endswith("?"):
        problems.append("statement must end with '.', questions with '?'")
    if len(statement.split()) > MAX_STATEMENT_WORDS:
        problems.append(f"statement longer than {MAX_STATEMENT_WORDS} words")
    if subject.casefold() in guard.subjects:
        problems.append("subject reused from facts.jsonl")
    if target.casefold() in guard.targets:
        problems.append("target reused from facts.jsonl")
    if statement.casefold() in guard.statements:
        problems.append("statement reused from facts.jsonl")
    if rec["category"] == "counterfactual":
        if any(contains_phrase(statement, s, case_sensitive=True) for s in guard.counterfactual_subjects):
            problems.append("statement mentions an evaluation counterfactual subject")
    elif any(w in guard.name_words for w in words(subject)):
        problems.append("subject shares a name word with an evaluation subject")
    return problems


def render(template: Template, gen: Gen) -> dict[str, str]:
    """One record from ``template``: a random statement phrasing and two different questions."""
    subject = template.subject(gen)
    maker = template.value
    value = maker(gen, subject) if isinstance(maker, SubjectDependent) else maker(gen)
    slots = {**subject.slots, **value.slots, "ref": subject.ref, "value": value.phrase}
    statement = gen.choice(template.statements).format(**slots)
    first, second = gen.rng.sample(template.questions, 2)
    return make_record(
        template.category, statement, subject.name, value.target, first.format(**slots), second.format(**slots)
    )


def build_invented(
    templates: Sequence[Template], quota: int, gen: Gen, guard: EvalGuard, used_subjects: set[str], dropped: list[str]
) -> list[dict[str, str]]:
    """``quota`` records from ``templates`` in turn; a template that keeps failing drops out
    (its name is appended to ``dropped``)."""
    records: list[dict[str, str]] = []
    active = list(templates)
    turn = 0
    while len(records) < quota:
        if not active:
            msg = f"templates exhausted after {len(records)} records"
            raise RuntimeError(msg)
        template = active[turn % len(active)]
        turn += 1
        for _ in range(MAX_TRIES_PER_RECORD):
            rec = render(template, gen)
            if not record_problems(rec, guard) and rec["subject"].casefold() not in used_subjects:
                used_subjects.add(rec["subject"].casefold())
                records.append(rec)
                break
        else:
            active.remove(template)
            dropped.append(template.name)
    return records


def counterfactual_record(relation: Relation, fact: RealFact, gen: Gen, guard: EvalGuard) -> dict[str, str] | None:
    """A false statement about ``fact`` with a wrong value, or None if no wrong value passes."""
    rng = gen.rng
    truths = {t.casefold() for t in fact.truths}
    if relation.persons:
        truths |= {family_name(t).casefold() for t in fact.truths}
    ref = fact.ref if fact.ref is not None else fact.subject
    for _ in range(MAX_TRIES_PER_RECORD):
        if relation.numeric is not None:
            phrase = str(relation.numeric(int(fact.truths[0]), rng))
        else:
            candidates = list(fact.alternatives) or relation.pool()
            phrase = rng.choice(candidates)
        target = family_name(phrase) if relation.persons else phrase
        if phrase.casefold() in truths or target.casefold() in truths or len(target) < 2:
            continue
        if not guard.value_allowed(phrase, target):
            continue
        slots = {"ref": ref, "value": phrase}
        statement = rng.choice(relation.statements).format(**slots)
        first, second = rng.sample(relation.questions, 2)
        rec = make_record(
            "counterfactual", statement, fact.subject, target, first.format(**slots), second.format(**slots)
        )
        if not record_problems(rec, guard):
            return rec
    return None


def build_counterfactual(
    quota: int, gen: Gen, guard: EvalGuard, used_subjects: set[str]
) -> tuple[list[dict[str, str]], int]:
    """Up to ``quota`` counterfactual records, taking relations in turn so that all are represented.

    Returns the records and the number of real facts skipped because the evaluation file mentions
    their subject.
    """
    queues: list[list[RealFact]] = []
    skipped = 0
    for relation in COUNTERFACTUAL_RELATIONS:
        allowed = [f for f in relation.facts if guard.real_subject_allowed(f.subject)]
        skipped += len(relation.facts) - len(allowed)
        gen.rng.shuffle(allowed)
        queues.append(allowed)
    records: list[dict[str, str]] = []
    while len(records) < quota and any(queues):
        for relation, queue in zip(COUNTERFACTUAL_RELATIONS, queues, strict=True):
            if not queue or len(records) >= quota:
                continue
            fact = queue.pop()
            if fact.subject.casefold() in used_subjects:
                continue
            rec = counterfactual_record(relation, fact, gen, guard)
            if rec is not None:
                used_subjects.add(rec["subject"].casefold())
                records.append(rec)
    return records, skipped


def assign_locality(records: list[dict[str, str]], gen: Gen) -> None:
    """Give each record a locality pair, cycling through a shuffled copy of :data:`LOCALITY`."""
    pairs = list(LOCALITY)
    gen.rng.shuffle(pairs)
    for i, rec in enumerate(records):
        rec["locality_prompt"], rec["locality_answer"] = pairs[i % len(pairs)]


# =============================================================================================
# Final validation
# =============================================================================================


def validate(records: Sequence[Mapping[str, str]], guard: EvalGuard) -> None:
    """Raise ``ValueError`` listing every violated rule (nothing is written then)."""
    errors: list[str] = []
    seen_subjects: dict[str, int] = {}
    for i, rec in enumerate(records):
        if tuple(rec) != FIELDS:
            errors.append(f"record {i}: fields {tuple(rec)}")
            continue
        for problem in record_problems(rec, guard):
            errors.append(f"record {i} ({rec['subject']!r}): {problem}")
        if rec["category"] not in CATEGORIES:
            errors.append(f"record {i}: unknown category {rec['category']!r}")
        if not rec["locality_prompt"] or not rec["locality_answer"]:
            errors.append(f"record {i}: empty locality pair")
        if rec["locality_prompt"].casefold() in guard.locality_prompts:
            errors.append(f"record {i}: locality prompt reused from facts.jsonl")
        key = rec["subject"].casefold()
        if key in seen_subjects:
            errors.append(f"record {i}: subject {rec['subject']!r} already used by record {seen_subjects[key]}")
        seen_subjects.setdefault(key, i)

    prompts = [p for p, _ in LOCALITY]
    if len(set(prompts)) != len(prompts):
        errors.append("duplicate locality prompts in LOCALITY")
    # Locality questions must stay away from every real fact that some edit contradicts: the
    # counterfactual subjects of this file and the counterfactual subjects and (word) targets of
    # facts.jsonl ("When did the Second World War end?" would be an evaluation edit in disguise).
    avoid = [r["subject"] for r in records if r["category"] == "counterfactual"]
    avoid += list(guard.counterfactual_subjects) + [t for t in guard.counterfactual_targets if not t.isdigit()]
    for prompt, answer in LOCALITY:
        for phrase in avoid:
            if any(contains_phrase(text, phrase, case_sensitive=False) for text in (prompt, answer)):
                errors.append(f"locality pair {prompt!r} mentions counterfactual subject or target {phrase!r}")

    counts = Counter(r["category"] for r in records)
    if set(counts) != set(CATEGORIES) or min(counts.values()) < 0.8 * max(counts.values()):
        errors.append(f"categories unbalanced: {dict(counts)}")

    if sum(len(t) for t in INVENTED.values()) + len(COUNTERFACTUAL_RELATIONS) < 45:
        errors.append("fewer than 45 relation templates")
    if errors:
        shown = "\n  ".join(errors[:40])
        msg = f"{len(errors)} problem(s) in the generated training facts:\n  {shown}"
        raise ValueError(msg)


# =============================================================================================
# Main
# =============================================================================================

INVENTED: dict[str, list[Template]] = {
    "person_role": PERSON_ROLE,
    "organisation": ORGANISATION,
    "place": PLACE,
    "number": NUMBER,
    "date": DATE,
    "code": CODE,
    "product": PRODUCT,
    "science_fiction_world": SCIENCE_FICTION,
    "personal": PERSONAL,
}


def generate(
    guard: EvalGuard, seed: int = SEED, per_category: int = PER_CATEGORY
) -> tuple[list[dict[str, str]], int, list[str]]:
    """All training records (shuffled, locality assigned), the number of real facts skipped
    because the evaluation file mentions them, and the templates that ran out of fresh subjects."""
    gen = Gen(random.Random(seed))
    used_subjects: set[str] = set()
    dropped: list[str] = []
    records, skipped = build_counterfactual(per_category, gen, guard, used_subjects)
    for category in CATEGORIES:
        if category != "counterfactual":
            records += build_invented(INVENTED[category], per_category, gen, guard, used_subjects, dropped)
    gen.rng.shuffle(records)
    assign_locality(records, gen)
    return records, skipped, dropped


def main(argv: Sequence[str] | None = None) -> None:
    """Generate, validate and write the training facts, then print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output", type=Path, default=OUTPUT_FILE, help="where to write the JSONL (default: %(default)s)"
    )
    parser.add_argument("--examples", type=int, default=8, help="how many random example records to print")
    args = parser.parse_args(argv)

    guard = EvalGuard.load(EVAL_FILE)
    records, skipped, dropped = generate(guard)
    validate(records, guard)

    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    args.output.write_text(text, encoding="utf-8")
    data = text.encode("utf-8")

    counts = Counter(r["category"] for r in records)
    templates = sum(len(t) for t in INVENTED.values()) + len(COUNTERFACTUAL_RELATIONS)
    print(f"wrote {args.output} ({len(records)} records, {len(data)} bytes)")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")
    print(
        f"templates: {templates} ({len(COUNTERFACTUAL_RELATIONS)} counterfactual relations); "
        f"real facts skipped because facts.jsonl mentions them: {skipped}; "
        f"templates that ran out of subjects: {', '.join(dropped) or 'none'}"
    )
    print("categories:")
    for category in CATEGORIES:
        print(f"  {category:<22} {counts[category]}")
    print(f"{args.examples} random examples:")
    for rec in random.Random(SEED + 1).sample(records, args.examples):
        print("  " + json.dumps(rec, ensure_ascii=False))


if __name__ == "__main__":
    main()
