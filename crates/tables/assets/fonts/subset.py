"""Rebuilds assets/fonts/repro-sans.ttf: WenQuanYi Micro Hei (Debian's fonts-wqy-microhei,
Apache-2.0) subset to ASCII, Latin-1, Greek, common punctuation and every character of
data/cities.csv, so figures can label Chinese city names without system fonts.

Run from the repository root:  python assets/fonts/subset.py   (needs `pip install fonttools`)
"""
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

SOURCE = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
OUT = Path("assets/fonts/repro-sans.ttf")

chars = set()
chars.update(chr(c) for c in range(0x20, 0x7F))    # ASCII
chars.update(chr(c) for c in range(0xA0, 0x100))   # Latin-1
chars.update(chr(c) for c in range(0x391, 0x3CA))  # Greek
chars.update(chr(c) for c in range(0x2010, 0x2040))  # dashes, quotes, bullets, primes
chars.update("−×÷±≤≥≠≈∞√·…°‰€£¥　、。，．：；！？（）《》「」『』【】～")
chars.update(Path("data/cities.csv").read_text(encoding="utf-8"))
chars.discard("\n")
chars.discard("\r")

font = TTCollection(SOURCE).fonts[0]
options = subset.Options()
options.name_IDs = ["*"]
options.name_languages = ["*"]
options.notdef_outline = True
options.layout_features = []
options.hinting = False
sub = subset.Subsetter(options)
sub.populate(unicodes=sorted(ord(c) for c in chars))
sub.subset(font)
# No creation/modification times in the committed file: fix the head table's dates.
font["head"].created = 0
font["head"].modified = 0
font.recalcTimestamp = False
font.save(OUT, reorderTables=True)
print(OUT, OUT.stat().st_size, "bytes,", len(chars), "characters")
