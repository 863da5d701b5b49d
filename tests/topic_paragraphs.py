"""Paragraphs on unrelated subjects (written for the tests): question-aware compression must give the
paragraph a question is about most of the budget. Imported by name (tests/ is on sys.path)."""

RHINE = (
    "The Rhine rises in the Swiss Alps and flows north through Germany and the Netherlands before it "
    "reaches the North Sea near Rotterdam. Barges carry coal, grain and containers along most of its "
    "length, and Duisburg on its lower course has one of the largest inland ports in the world."
)
SOURDOUGH = (
    "Sourdough bread is leavened by a starter of wild yeast and lactic acid bacteria instead of baker's "
    "yeast. The starter is fed with flour and water every day, and a long, cool fermentation gives the "
    "loaf its sour taste and open crumb."
)
VIOLIN = (
    "The violin has four strings tuned in perfect fifths, and its bow is strung with horsehair coated "
    "in rosin. Stradivari built his most famous instruments in Cremona in the early eighteenth century."
)
BEES = (
    "Honeybees communicate the direction and distance of flowers with a waggle dance on the comb. A "
    "colony in summer holds tens of thousands of workers and a single queen that lays the eggs."
)
PARAGRAPHS = [RHINE, SOURDOUGH, VIOLIN, BEES]
RHINE_QUESTION = "Which port on the Rhine is one of the largest inland ports?"
