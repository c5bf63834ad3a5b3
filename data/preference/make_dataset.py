"""Write the preference data set of notebook 17: ``train.jsonl`` and ``test.jsonl`` (concise vs rambling answers).

Run ``python data/preference/make_dataset.py`` to rebuild both files byte for byte (fixed seed, no network).
Every question, answer and rambling phrase below was written for this project. See README.md in this folder.

Each item is a short question with one right answer. ``chosen`` is that answer in one short sentence; ``rejected``
holds the SAME answer wrapped in padding: an opener, a restatement of the question, filler sentences, a summary
that repeats the answer or a closing offer of more help. So the two differ in length and padding only, never in
correctness, and the preference can be measured on generated text (its length, its padding).

The split is by item (each fact is in one split only), and the test's padding phrases are a separate pool that
never occurs in training: a model that prefers the test's chosen answers has learnt "be brief", not a list of
phrases to avoid.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 15
HERE = Path(__file__).resolve().parent
TEST_FRACTION = 0.2


# ----------------------------------------------------------------------------------------------- the items
def _table(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]


CAPITALS = _table("""
France|Paris
Germany|Berlin
Italy|Rome
Spain|Madrid
Portugal|Lisbon
Japan|Tokyo
China|Beijing
India|New Delhi
Egypt|Cairo
Kenya|Nairobi
Canada|Ottawa
Mexico|Mexico City
Brazil|Brasília
Argentina|Buenos Aires
Peru|Lima
Chile|Santiago
Russia|Moscow
Norway|Oslo
Sweden|Stockholm
Finland|Helsinki
Denmark|Copenhagen
Poland|Warsaw
Greece|Athens
Turkey|Ankara
Ireland|Dublin
Austria|Vienna
Hungary|Budapest
the Netherlands|Amsterdam
Belgium|Brussels
Switzerland|Bern
Australia|Canberra
New Zealand|Wellington
South Korea|Seoul
Thailand|Bangkok
Vietnam|Hanoi
Indonesia|Jakarta
the Philippines|Manila
Iran|Tehran
Iraq|Baghdad
Saudi Arabia|Riyadh
Morocco|Rabat
Nigeria|Abuja
Ghana|Accra
Ethiopia|Addis Ababa
Cuba|Havana
Colombia|Bogotá
Venezuela|Caracas
Ukraine|Kyiv
the Czech Republic|Prague
Romania|Bucharest
Iceland|Reykjavik
Scotland|Edinburgh
Wales|Cardiff
Pakistan|Islamabad
Bangladesh|Dhaka
""")

ELEMENTS = _table("""
gold|Au
silver|Ag
iron|Fe
copper|Cu
lead|Pb
tin|Sn
sodium|Na
potassium|K
oxygen|O
hydrogen|H
carbon|C
nitrogen|N
helium|He
neon|Ne
calcium|Ca
magnesium|Mg
zinc|Zn
mercury|Hg
sulfur|S
chlorine|Cl
uranium|U
aluminium|Al
silicon|Si
phosphorus|P
iodine|I
""")

ANTONYMS = _table("""
hot|cold
tall|short
fast|slow
early|late
happy|sad
open|closed
full|empty
light|dark
loud|quiet
rich|poor
strong|weak
wet|dry
young|old
hard|soft
thick|thin
clean|dirty
above|below
begin|end
buy|sell
push|pull
win|lose
arrive|leave
remember|forget
accept|refuse
cheap|expensive
safe|dangerous
wide|narrow
sharp|blunt
heavy|light
ancient|modern
""")

PLURALS = _table("""
mouse|mice
child|children
tooth|teeth
foot|feet
goose|geese
man|men
woman|women
person|people
ox|oxen
cactus|cacti
knife|knives
leaf|leaves
wolf|wolves
city|cities
box|boxes
sheep|sheep
fish|fish
crisis|crises
potato|potatoes
half|halves
""")

BABY_ANIMALS = _table("""
cat|kitten
dog|puppy
cow|calf
horse|foal
sheep|lamb
goat|kid
pig|piglet
duck|duckling
goose|gosling
swan|cygnet
frog|tadpole
kangaroo|joey
bear|cub
deer|fawn
owl|owlet
hen|chick
eagle|eaglet
""")

UNITS = _table("""
How many centimetres are in a metre?|100|There are 100 centimetres in a metre.
How many metres are in a kilometre?|1,000|There are 1,000 metres in a kilometre.
How many grams are in a kilogram?|1,000|There are 1,000 grams in a kilogram.
How many millilitres are in a litre?|1,000|There are 1,000 millilitres in a litre.
How many seconds are in a minute?|60|There are 60 seconds in a minute.
How many minutes are in an hour?|60|There are 60 minutes in an hour.
How many hours are in a day?|24|There are 24 hours in a day.
How many days are in a week?|seven|There are seven days in a week.
How many months are in a year?|12|There are 12 months in a year.
How many days are in a leap year?|366|A leap year has 366 days.
How many years are in a century?|100|There are 100 years in a century.
How many years are in a decade?|ten|There are ten years in a decade.
How many inches are in a foot?|12|There are 12 inches in a foot.
How many feet are in a yard?|three|There are three feet in a yard.
How many ounces are in a pound?|16|There are 16 ounces in a pound.
How many sides does a hexagon have?|six|A hexagon has six sides.
How many sides does a triangle have?|three|A triangle has three sides.
How many sides does an octagon have?|eight|An octagon has eight sides.
How many degrees are in a right angle?|90|A right angle is 90 degrees.
How many degrees are in a full circle?|360|A full circle is 360 degrees.
How many legs does a spider have?|eight|A spider has eight legs.
How many legs does an insect have?|six|An insect has six legs.
How many players are on a football team on the pitch?|eleven|A football team has eleven players on the pitch.
How many strings does a standard guitar have?|six|A standard guitar has six strings.
How many keys does a standard piano have?|88|A standard piano has 88 keys.
How many continents are there?|seven|There are seven continents.
How many planets are in the Solar System?|eight|There are eight planets in the Solar System.
How many letters are in the English alphabet?|26|The English alphabet has 26 letters.
How many bones are in the adult human body?|206|The adult human body has 206 bones.
How many hearts does an octopus have?|three|An octopus has three hearts.
""")

FACTS = _table("""
Which planet is closest to the Sun?|Mercury|Mercury is the closest planet to the Sun.
Which planet is the largest in the Solar System?|Jupiter|Jupiter is the largest planet.
Which planet is known as the Red Planet?|Mars|Mars is known as the Red Planet.
What is the largest ocean on Earth?|Pacific|The Pacific is the largest ocean.
What is the longest river in Africa?|Nile|The Nile is the longest river in Africa.
What is the tallest mountain on Earth?|Everest|Mount Everest is the tallest mountain on Earth.
What is the largest desert in Africa?|Sahara|The Sahara is the largest desert in Africa.
What gas do plants take in from the air?|carbon dioxide|Plants take in carbon dioxide.
What gas do humans need to breathe?|oxygen|Humans need oxygen.
At what temperature does water boil at sea level?|100|Water boils at 100 °C at sea level.
At what temperature does water freeze?|0|Water freezes at 0 °C.
What is the chemical formula of water?|H2O|The chemical formula of water is H2O.
What colour do you get by mixing blue and yellow?|green|Blue and yellow make green.
What colour do you get by mixing red and white?|pink|Red and white make pink.
What colour do you get by mixing red and blue?|purple|Red and blue make purple.
What is the hardest natural substance?|diamond|Diamond is the hardest natural substance.
What is the largest mammal?|blue whale|The blue whale is the largest mammal.
What is the fastest land animal?|cheetah|The cheetah is the fastest land animal.
Which organ pumps blood around the body?|heart|The heart pumps blood around the body.
Which organ do we use to breathe?|lungs|We breathe with our lungs.
What is the largest organ of the human body?|skin|The skin is the largest organ.
Who wrote Romeo and Juliet?|Shakespeare|William Shakespeare wrote Romeo and Juliet.
Who painted the Mona Lisa?|Leonardo|Leonardo da Vinci painted the Mona Lisa.
Who developed the theory of relativity?|Einstein|Albert Einstein developed it.
Who proposed the theory of evolution by natural selection?|Darwin|Charles Darwin proposed it.
What day comes after Monday?|Tuesday|Tuesday comes after Monday.
What day comes before Sunday?|Saturday|Saturday comes before Sunday.
What month comes after March?|April|April comes after March.
What is the first month of the year?|January|January is the first month.
What is the last month of the year?|December|December is the last month.
What is the freezing point of water in Fahrenheit?|32|Water freezes at 32 °F.
What is the square root of 81?|9|The square root of 81 is 9.
What is the square root of 144?|12|The square root of 144 is 12.
What is half of 50?|25|Half of 50 is 25.
What is a quarter of 100?|25|A quarter of 100 is 25.
Which language is spoken in Brazil?|Portuguese|Portuguese is spoken in Brazil.
Which language has the most native speakers?|Mandarin|Mandarin Chinese has the most native speakers.
What is the currency of Japan?|yen|The currency of Japan is the yen.
What is the currency of the United Kingdom?|pound|The currency is the pound sterling.
What do bees make?|honey|Bees make honey.
What do caterpillars turn into?|butterflies|Caterpillars turn into butterflies or moths.
What is the main ingredient of guacamole?|avocado|Guacamole is made mainly from avocado.
What is the opposite of north?|south|The opposite of north is south.
Which instrument has black and white keys?|piano|The piano has black and white keys.
What shape has three sides?|triangle|A triangle has three sides.
What is frozen water called?|ice|Frozen water is called ice.
Which star is at the centre of the Solar System?|Sun|The Sun is at the centre.
What is the natural satellite of the Earth?|Moon|The Moon is Earth's natural satellite.
""")

DEFINITIONS = _table("""
What is a noun?|naming word|A noun is a naming word for a person, place or thing.
What is a verb?|action|A verb is a word for an action or a state.
What is an adjective?|describes|An adjective is a word that describes a noun.
What is photosynthesis?|sunlight|Photosynthesis is how plants make sugar from sunlight, water and carbon dioxide.
What is gravity?|attracts|Gravity is the force that attracts masses towards each other.
What is an atom?|smallest|An atom is the smallest unit of a chemical element.
What is a prime number?|divisible|A prime number is divisible only by 1 and itself.
What is an even number?|divisible by 2|An even number is a whole number divisible by 2.
What is a mammal?|milk|A mammal is a warm-blooded animal that feeds its young with milk.
What is a volcano?|magma|A volcano is an opening in the Earth's crust where magma erupts.
What is an island?|water|An island is land surrounded by water.
What is a peninsula?|water on three sides|A peninsula is land surrounded by water on three sides.
What is a glacier?|ice|A glacier is a large, slow-moving mass of ice.
What is evaporation?|gas|Evaporation is a liquid turning into a gas.
What is a synonym?|same meaning|A synonym is a word with the same meaning as another.
What is a haiku?|three lines|A haiku is a short poem of three lines.
What is a democracy?|vote|A democracy is a system where people vote for their government.
What is inflation?|prices|Inflation is a general rise in prices over time.
What is a virus?|cells|A virus is a tiny agent that can only multiply inside living cells.
What is a vaccine?|immune|A vaccine trains the immune system to fight a disease.
What is an algorithm?|steps|An algorithm is a list of steps that solves a problem.
What is a password?|secret|A password is a secret word that proves who you are.
What is a thermometer?|temperature|A thermometer measures temperature.
What is a compass?|north|A compass is a tool that shows which way is north.
What is a telescope?|distant|A telescope makes distant objects look closer.
What is a calendar?|days|A calendar shows the days, weeks and months of a year.
What is a dictionary?|meanings|A dictionary lists words and their meanings.
What is an orchestra?|musicians|An orchestra is a large group of musicians playing together.
What is a fossil?|remains|A fossil is the preserved remains of an ancient living thing.
What is an eclipse?|blocks|An eclipse is when one body blocks the light of another.
What is a herbivore?|plants|A herbivore is an animal that eats only plants.
What is a carnivore?|meat|A carnivore is an animal that eats meat.
What is friction?|resists|Friction is the force that resists motion between surfaces.
What is a recipe?|instructions|A recipe is a set of instructions for cooking a dish.
What is a metaphor?|comparison|A metaphor is a comparison that calls one thing another.
""")


def arithmetic(rng: random.Random, n: int) -> list[tuple[str, str, str]]:
    out, seen = [], set()
    while len(out) < n:
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        op = rng.choice(["plus", "minus", "times"])
        if op == "minus" and b > a:
            a, b = b, a
        if op == "times":
            a, b = rng.randint(2, 12), rng.randint(2, 12)
        if (a, op, b) in seen:
            continue
        seen.add((a, op, b))
        value = a + b if op == "plus" else a - b if op == "minus" else a * b
        out.append((f"What is {a} {op} {b}?", str(value), f"{a} {op} {b} is {value}."))
    return out


def items(rng: random.Random) -> list[dict]:
    """(category, question, answer key, concise answer) for every item."""
    rows = []
    for country, city in CAPITALS:
        rows.append(("capital", f"What is the capital of {country}?", city, f"The capital of {country} is {city}."))
    for name, symbol in ELEMENTS:
        rows.append(("element", f"What is the chemical symbol for {name}?", symbol,
                     f"The chemical symbol for {name} is {symbol}."))
    for word, opposite in ANTONYMS:
        rows.append(("antonym", f"What is the opposite of '{word}'?", opposite, f"The opposite of '{word}' is '{opposite}'."))
    for word, plural in PLURALS:
        rows.append(("plural", f"What is the plural of '{word}'?", plural, f"The plural of '{word}' is '{plural}'."))
    for animal, baby in BABY_ANIMALS:
        article = "an" if baby[0] in "aeiou" else "a"
        rows.append(("baby animal", f"What is a baby {animal} called?", baby, f"A baby {animal} is called {article} {baby}."))
    for category, table in (("count", UNITS), ("fact", FACTS), ("definition", DEFINITIONS)):
        rows.extend((category, q, key, a) for q, key, a in table)
    rows.extend(("arithmetic", q, key, a) for q, key, a in arithmetic(rng, 45))
    return [dict(category=c, prompt=q, answer=k, chosen=a) for c, q, k, a in rows]


# ----------------------------------------------------------------------------------------------- the padding
# Two disjoint pools: training pairs draw from the first, test pairs from the second.
PADDING = {
    "train": {
        "opener": ["Great question! I'm really glad you asked about this.",
                   "Sure! Let me think about this carefully before I answer.",
                   "What an interesting thing to wonder about!",
                   "Thanks so much for asking, this is something a lot of people are curious about.",
                   "Of course! I would be more than happy to help you with that.",
                   "Okay, so this is a question that comes up quite a lot, actually."],
        "restate": ["You are asking: {q}", "So, to restate your question: {q}", "Let me make sure I understand. {q}"],
        "filler": ["It is always a good idea to learn new things like this.",
                   "There are many ways to think about this, and each of them is interesting in its own way.",
                   "Knowing facts like this can be useful in everyday life, at school and at work.",
                   "Some people find this surprising at first, but it makes sense when you think about it.",
                   "This is one of those things that is worth remembering for the future.",
                   "Many books and websites talk about this topic in a lot of detail.",
                   "It is a topic with a long and fascinating history behind it.",
                   "Of course, there is always more to say about a subject like this one."],
        "summary": ["So, to sum up: {a}", "In short: {a}", "To put it simply once more: {a}"],
        "closer": ["I hope this helps! Let me know if you have any other questions.",
                   "Feel free to ask me anything else you would like to know!",
                   "Please don't hesitate to reach out if you need more information.",
                   "I'm always here if you want to learn more about this or anything else."],
    },
    "test": {
        "opener": ["Ah, what a wonderful question to think about today!",
                   "Absolutely, I can definitely help you out with this one.",
                   "Hmm, let me see. This is a really good thing to ask about.",
                   "Well, first of all, thank you for such a thoughtful question."],
        "restate": ["Your question is: {q}", "In other words, you would like to know: {q}"],
        "filler": ["Questions like this one are a great way to keep your mind curious and active.",
                   "People have been discussing ideas like this for a very long time.",
                   "It is the kind of detail that can come in handy when you least expect it.",
                   "Teachers often mention this, because it connects to many other subjects.",
                   "Once you know it, you will probably start noticing it everywhere around you."],
        "summary": ["All in all: {a}", "To wrap things up: {a}"],
        "closer": ["I really hope that answers your question! Ask away if anything is unclear.",
                   "If you have more questions, I'd be delighted to answer them too.",
                   "Have a lovely day, and keep asking great questions!"],
    },
}


def ramble(item: dict, pool: dict, rng: random.Random) -> str:
    """The right answer, padded: opener, restatement, answer, a filler, and a summary or a closer."""
    parts = [rng.choice(pool["opener"]), rng.choice(pool["restate"]).format(q=item["prompt"]), item["chosen"],
             rng.choice(pool["filler"]),
             rng.choice(pool["summary"]).format(a=item["chosen"]) if rng.random() < 0.3 else rng.choice(pool["closer"])]
    return " ".join(parts)


def build() -> dict[str, list[dict]]:
    rng = random.Random(SEED)
    rows = items(rng)
    rng.shuffle(rows)
    # Stratified split: the last fifth of each category goes to the test set.
    splits = {"train": [], "test": []}
    for category in sorted({r["category"] for r in rows}):
        group = [r for r in rows if r["category"] == category]
        n_test = max(1, round(TEST_FRACTION * len(group)))
        splits["train"].extend(group[:-n_test])
        splits["test"].extend(group[-n_test:])
    out = {}
    for split, group in splits.items():
        rng.shuffle(group)
        out[split] = [{"id": f"{split}-{i:04d}", "prompt": r["prompt"], "chosen": r["chosen"],
                       "rejected": ramble(r, PADDING[split], rng), "answer": r["answer"], "category": r["category"]}
                      for i, r in enumerate(group)]
    return out


def main() -> None:
    for split, rows in build().items():
        with open(HERE / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{split}: {len(rows)} rows")


if __name__ == "__main__":
    main()
