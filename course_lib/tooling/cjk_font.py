"""Rebuild the Chinese font subset the course ships (``course_lib/data/fonts/NotoSansSC-CourseSubset.ttf``).

Maintainers only, and only when the tests report a character the font lacks (``tests/test_language.py``).
The source is the WOFF files of the ``@fontsource/noto-sans-sc`` npm package (Noto Sans SC, SIL OFL 1.1),
which slices the font by Unicode range::

    npm pack @fontsource/noto-sans-sc@5.3.0 && tar xzf fontsource-noto-sans-sc-5.3.0.tgz
    .venv/bin/python -m course_lib.tooling.cjk_font package/files

The subset holds the 3,755 common characters of GB 2312 level 1, CJK punctuation, full-width forms and
every character of the Chinese edition (catalogs, message catalog, README.zh.md, docs/*.zh.md): about
2.3 MB, against 7 MB for the whole font at this weight.
"""

from __future__ import annotations

import argparse
import glob
import tempfile
from pathlib import Path

from course_lib.language import CATALOG, CJK_FONT

ROOT = Path(__file__).resolve().parents[2]


def characters(root: Path = ROOT) -> set[str]:
    """The characters the subset must hold."""
    common = set()
    for hi in range(0xB0, 0xD8):                       # GB 2312 level 1: rows 16-55
        for lo in range(0xA1, 0xFF):
            try:
                common.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    text = CATALOG.read_text(encoding="utf-8")
    for path in [*glob.glob(str(root / "translations" / "**" / "*.json"), recursive=True),
                 root / "README.zh.md", *root.glob("docs/*.zh.md")]:
        text += Path(path).read_text(encoding="utf-8")
    punctuation = {chr(c) for c in [*range(0x3000, 0x3040), *range(0xFF00, 0xFF70)]}
    return common | punctuation | {c for c in text if ord(c) >= 0x2E80}


def build(source: Path, out: Path = CJK_FONT, root: Path = ROOT) -> Path:
    """Merge the weight-400 slices that hold a needed character, keep only those characters, write ``out``."""
    from fontTools import merge, subset
    from fontTools.ttLib import TTFont

    need = characters(root)
    with tempfile.TemporaryDirectory() as tmp:
        slices = []
        for i, path in enumerate(sorted(Path(source).glob("*-400-normal.woff"))):
            font = TTFont(path)
            if any(ord(c) in font.getBestCmap() for c in need):
                font.flavor = None                     # WOFF -> plain TrueType, which merge reads
                slices.append(str(Path(tmp) / f"{i}.ttf"))
                font.save(slices[-1])
        if not slices:
            raise FileNotFoundError(f"no *-400-normal.woff slices of Noto Sans SC in {source}")
        merged = merge.Merger().merge(slices)
        options = subset.Options()
        options.layout_features, options.name_IDs, options.notdef_outline = ["*"], ["*"], True
        cutter = subset.Subsetter(options)
        cutter.populate(text="".join(sorted(need)))
        cutter.subset(merged)
        out.parent.mkdir(parents=True, exist_ok=True)
        merged.save(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="folder with the noto-sans-sc-*-400-normal.woff slices")
    ap.add_argument("--out", type=Path, default=CJK_FONT)
    args = ap.parse_args()
    path = build(args.source, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) from {args.source}")


if __name__ == "__main__":
    main()
