"""The course with its formulas typeset, made from README.org by pandoc (`make html` runs this).

GitHub renders README.org with org-ruby, which cannot typeset math: the formulas there are plain text,
and their LaTeX sits in `#+begin_formula` blocks that org-ruby leaves out. Pandoc reads those blocks
as math, and writes
- course.md, committed: GitHub typesets the math of Markdown files, so a reader there gets the
  formulas one click away from README.org (tests/test_rendering.py checks that it is up to date);
- README.html, for a browser, with the math as MathML (not committed).

    python tools/typeset.py            # write both
    python tools/typeset.py --check    # exit 1 if course.md is not what README.org makes now
"""

import argparse
import json
import sys
from pathlib import Path

import pypandoc

REPO = Path(__file__).resolve().parents[1]
PANDOC = "3.9"  # the pandoc of pypandoc_binary 1.17 (make html installs it): another one words things differently
HEADER = "<!-- Made from README.org by `make html`: edit README.org, not this file. -->\n\n"


def links_to(node, target):
    """True if a pandoc AST node holds a link to `target`."""
    if isinstance(node, dict):
        if node.get("t") == "Link" and node["c"][2][0] == target:
            return True
        return links_to(node.get("c"), target)
    return isinstance(node, list) and any(links_to(child, target) for child in node)


def markdown_blocks(blocks):
    """README.org's blocks as course.md shows them: the formula blocks unwrapped to their math, and the
    paragraph that points readers to course.md left out of course.md itself."""
    kept = []
    for block in blocks:
        if block["t"] == "Div" and "formula" in block["c"][0][1]:
            kept += markdown_blocks(block["c"][1])
        elif not (block["t"] == "Para" and links_to(block, "course.md")):
            if block["t"] in ("BulletList", "OrderedList"):  # formula blocks inside list items
                items = block["c"] if block["t"] == "BulletList" else block["c"][1]
                items[:] = [markdown_blocks(item) for item in items]
            kept.append(block)
    return kept


def course_md():
    ast = json.loads(pypandoc.convert_file(str(REPO / "README.org"), "json"))
    title = "".join(part.get("c", " ") for part in ast["meta"]["title"]["c"])
    ast["blocks"] = markdown_blocks(ast["blocks"])
    # --wrap=preserve keeps README.org's line breaks, so a change there is a change of the same lines here.
    body = pypandoc.convert_text(json.dumps(ast), "gfm", format="json", extra_args=["--wrap=preserve"])
    body = "".join(line.rstrip() + "\n" for line in body.splitlines())  # pandoc pads the math with spaces
    return f"{HEADER}# {title}\n\n{body}"


def write_html(path):
    pypandoc.convert_file(
        str(REPO / "README.org"),
        "html5",
        outputfile=str(path),
        extra_args=["--standalone", "--mathml", "--toc", "--metadata", "title=PyTorch lessons"],
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check that course.md is up to date")
    args = p.parse_args()
    if pypandoc.get_pandoc_version() != PANDOC:
        sys.exit(f"typeset.py: pandoc {PANDOC} wanted (pip install pypandoc_binary==1.17)")
    md = course_md()
    if args.check:
        if (REPO / "course.md").read_text() != md:
            sys.exit("typeset.py: course.md is out of date: run make html")
        return
    (REPO / "course.md").write_text(md)
    write_html(REPO / "README.html")
    print("wrote course.md and README.html")


if __name__ == "__main__":
    main()
