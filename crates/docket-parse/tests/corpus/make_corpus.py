#!/usr/bin/env python3
"""Regenerate the docket-parse test corpus.

Requires Python 3.9+ and these PyPI packages:

    pip install python-docx openpyxl fpdf2

Run from this directory (`python3 make_corpus.py`). The generated files are committed; the
tests only read them. Output is deterministic apart from timestamps some libraries embed.
"""

import csv
import datetime
import io
import json
import os
import random
import zipfile

import docx
import openpyxl
from fpdf import FPDF

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTILE = os.path.join(HERE, "hostile")


def path(*parts):
    return os.path.join(HERE, *parts)


def write_bytes(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


# --- report.pdf: three pages, distinct text per page, headings --------------------------------

def make_pdf():
    pdf = FPDF()
    pdf.set_creation_date(datetime.datetime(2024, 6, 1, tzinfo=datetime.timezone.utc))
    pdf.set_title("Quarterly Report")
    pages = [
        ("Quarterly Report", [
            "This report summarises the operations of the Harbour Street depot.",
            "Revenue grew by twelve percent compared with the previous quarter.",
        ]),
        ("Logistics", [
            "The fleet completed 4812 deliveries without a single lost parcel.",
            "Average delivery time dropped to thirty one hours.",
        ]),
        ("Outlook", [
            "Next quarter we will open a second depot in Riverside.",
            "Hiring will focus on night shift drivers.",
        ]),
    ]
    for title, paras in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 20)
        pdf.cell(0, 12, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 12)
        for p in paras:
            pdf.multi_cell(0, 8, p, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
    data = bytes(pdf.output())
    write_bytes("report.pdf", data)
    return data


# --- handbook.docx: title, headings, paragraphs, a table ---------------------------------------

def make_docx():
    d = docx.Document()
    d.add_heading("Employee Handbook", level=0)  # style "Title"
    d.add_paragraph("Welcome to Acme Corporation. This handbook explains how we work.")
    d.add_heading("Working Hours", level=1)
    d.add_paragraph("Core hours are from ten in the morning until four in the afternoon.")
    d.add_heading("Remote Work", level=2)
    d.add_paragraph("Employees may work remotely up to three days per week.")
    d.add_heading("Leave", level=1)
    d.add_paragraph("Every employee receives twenty five days of paid leave per year.")
    table = d.add_table(rows=3, cols=3)
    rows = [
        ("Leave type", "Days", "Approval"),
        ("Annual leave", "25", "Manager"),
        ("Parental leave", "90", "HR department"),
    ]
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    d.add_paragraph("Unused leave carries over to the first quarter of the next year.")
    buf = io.BytesIO()
    d.save(buf)
    write_bytes("handbook.docx", buf.getvalue())


# --- sheet.xlsx: two sheets -------------------------------------------------------------------

def make_xlsx():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Inventory"
    ws.append(["Item", "Quantity", "Location"])
    ws.append(["Pallet jack", 4, "Aisle 3"])
    ws.append(["Forklift", 2, "Loading bay"])
    ws2 = wb.create_sheet("Staff")
    ws2.append(["Name", "Role"])
    ws2.append(["Ada Lovelace", "Analyst"])
    ws2.append(["Grace Hopper", "Engineer"])
    buf = io.BytesIO()
    wb.save(buf)
    write_bytes("sheet.xlsx", buf.getvalue())


# --- text-like formats --------------------------------------------------------------------------

GUIDE_MD = """# Installation Guide

This guide explains how to install the docket service.

## Requirements

You need PostgreSQL 15 or SQLite 3.40 and about 2 GB of free memory.

- a Linux host
- a reachable database

## Steps

### Download

Fetch the release archive from the project page.

### Configure

Copy `docket.toml` and set the database URL.

```toml
database_url = "postgres://localhost/docket"
```

# Troubleshooting

If the worker does not start, check the log for a migration error.
"""

PAGE_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Gardening Tips</title>
  <style>body { font-family: sans-serif; }</style>
  <script>var tracking = "do not index this script";</script>
</head>
<body>
  <header><a href="/">Home</a> | Site header text</header>
  <nav><ul><li><a href="/a">Navigation link one</a></li><li><a href="/b">Navigation link two</a></li></ul></nav>
  <main>
    <h1>Gardening Tips</h1>
    <p>Tomatoes need at least six hours of direct sunlight every day.</p>
    <h2>Watering</h2>
    <p>Water deeply   but
       infrequently to encourage strong roots.</p>
    <ul>
      <li>Water in the early morning</li>
      <li>Avoid wetting the leaves</li>
    </ul>
    <h2>Soil</h2>
    <p>Mix compost into the soil before planting &amp; mulch afterwards.</p>
    <table>
      <tr><th>Plant</th><th>pH</th></tr>
      <tr><td>Tomato</td><td>6.5</td></tr>
      <tr><td>Blueberry</td><td>4.5</td></tr>
    </table>
  </main>
  <aside>Sidebar advertisement</aside>
  <footer>Copyright footer text</footer>
  <script>console.log("trailing script");</script>
</body>
</html>
"""

NOTES_TXT = (
    "Meeting notes\r\n"
    "\r\n"
    "The team agreed to ship the ingestion service on Friday.\r\n"
    "Unicode check: naïve café, Grüße, 日本語.\r\n"
)

LATIN1_TXT = (
    "Café au lait, crème brûlée et pâte à choux.\n"
    "Le garçon a commandé une piña colada à Zürich.\n"
    "Prix : 12 € — très cher !\n"
)

UTF16_TXT = "Straße und Größe: überall Umlaute.\nΕλληνικά και русский текст.\n"


def make_text_files():
    write_bytes("guide.md", GUIDE_MD.encode("utf-8"))
    write_bytes("page.html", PAGE_HTML.encode("utf-8"))
    write_bytes("notes.txt", NOTES_TXT.encode("utf-8"))
    write_bytes("legacy-latin1.txt", LATIN1_TXT.encode("cp1252"))
    write_bytes("utf16.txt", UTF16_TXT.encode("utf-16"))  # little-endian with BOM

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["city", "country", "population"])
    w.writerow(["Lisbon", "Portugal", "545923"])
    w.writerow(["Kraków", "Poland", "804237"])
    w.writerow(["Osaka", "Japan", "2752412"])
    w.writerow(["São Paulo", "Brazil", "11451245"])
    write_bytes("data.csv", buf.getvalue().encode("utf-8"))

    doc = {
        "service": "docket",
        "version": 3,
        "owner": {"name": "Platform Team", "email": "platform@example.com"},
        "regions": [
            {"name": "eu-west", "replicas": 3},
            {"name": "us-east", "replicas": 2},
        ],
        "enabled": True,
        "notes": None,
    }
    write_bytes("data.json", (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


# --- hostile inputs -----------------------------------------------------------------------------

def loop_pdf():
    """A PDF whose page tree is a cycle: the Pages node lists itself among its /Kids, and the
    content stream's /Length is an indirect reference to itself."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 /Parent 2 0 R >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    offsets.append(len(out))
    stream = b"BT /F1 12 Tf 72 720 Td (Loop) Tj ET"
    out += b"4 0 obj\n<< /Length 4 0 R >>\nstream\n" + stream + b"\nendstream\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(offsets) + 1)
    out += b"0000000000 65535 f \n"
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref)
    return bytes(out)


def zip_bomb_docx():
    """A DOCX whose word/document.xml inflates to 300 MiB (about 300 KiB compressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        head = b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(head)
            chunk = b" " * (1 << 20)
            for _ in range(300):
                f.write(chunk)
            f.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return buf.getvalue()


def make_hostile(report_pdf):
    os.makedirs(HOSTILE, exist_ok=True)
    rng = random.Random(20240601)
    with open(os.path.join(HOSTILE, "truncated.pdf"), "wb") as f:
        f.write(report_pdf[: len(report_pdf) * 2 // 5])
    with open(os.path.join(HOSTILE, "corrupt.pdf"), "wb") as f:
        f.write(b"%PDF-1.7\n" + bytes(rng.getrandbits(8) for _ in range(4096)))
    with open(os.path.join(HOSTILE, "loop.pdf"), "wb") as f:
        f.write(loop_pdf())
    with open(os.path.join(HOSTILE, "bomb.docx"), "wb") as f:
        f.write(zip_bomb_docx())
    # 100 000 nested <div>s, left unclosed (the end of the file closes them).
    with open(os.path.join(HOSTILE, "deep.html"), "wb") as f:
        f.write(b"<!DOCTYPE html><html><body>" + b"<div>" * 100_000 + b"deep text")
    with open(os.path.join(HOSTILE, "invalid-utf8.txt"), "wb") as f:
        f.write(b"Valid start of the line.\nBroken bytes: \xc3\x28 \xa0\xa1 \xf0\x28\x8c\xbc end.\nValid last line.\n")
    with open(os.path.join(HOSTILE, "invalid-utf8.json"), "wb") as f:
        f.write(b'{"name": "caf\xc3\x28", "ok": true}\n')
    with open(os.path.join(HOSTILE, "garbage.txt"), "wb") as f:
        f.write(bytes(rng.getrandbits(8) for _ in range(8192)))
    with open(os.path.join(HOSTILE, "empty.txt"), "wb") as f:
        pass


if __name__ == "__main__":
    report = make_pdf()
    make_docx()
    make_xlsx()
    make_text_files()
    make_hostile(report)
