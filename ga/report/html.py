"""index.html: the report's sections in one self-contained page (figures embedded as data URIs, styles inline, no
script), readable in any browser without a network and inside Snakemake's own report."""

from __future__ import annotations

import base64
from pathlib import Path

from ga.report.content import MISSING, Section, format_cell

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1300px; padding: 1em 2em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f0f0f0; } td.text { text-align: left; }
td.missing { color: #999; text-align: center; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
.note { color: #7a5500; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.85em; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p>{{ subtitle }}</p>
<nav>{% for section in sections %}<a href="#s{{ loop.index }}">{{ section.title }}</a>{% endfor %}</nav>
{% for section in sections %}
<section id="s{{ loop.index }}">
<h2>{{ section.title }}</h2>
{% if section.intro %}<p>{{ section.intro }}</p>{% endif %}
{% for note in section.notes %}<p class="note">{{ note }}</p>{% endfor %}
{% for figure in section.figures %}
<figure><img src="{{ figure.src }}" alt="{{ figure.caption }}"><figcaption>{{ figure.caption }}</figcaption></figure>
{% endfor %}
{% for table in section.tables %}
<table>
{% if table.caption %}<caption>{{ table.caption }}</caption>{% endif %}
<thead><tr>{% for column in table.columns %}<th>{{ column }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in table.rows %}<tr>{% for cell in row %}<td class="{{ cell.kind }}"{% if cell.kind == 'missing' %} title="no value: not measured, or not published"{% endif %}>{{ cell.text }}</td>{% endfor %}</tr>
{% endfor %}
</tbody>
</table>
{% endfor %}
{% if section.preformatted %}<pre>{{ section.preformatted }}</pre>{% endif %}
</section>
{% endfor %}
</body>
</html>
"""


def data_uri(png: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def _cell(value, digits: int) -> dict:
    text = format_cell(value, digits)
    kind = "missing" if text == MISSING else ("text" if isinstance(value, str) else "number")
    return {"text": text, "kind": kind}


def render_html(title: str, subtitle: str, sections: list[Section]) -> str:
    """The page; an empty table is never rendered (a section without rows says so in a note instead)."""
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = []
    for section in sections:
        tables = [
            {
                "caption": table.caption,
                "columns": table.columns,
                "rows": [[_cell(value, table.digits) for value in row] for row in table.rows],
            }
            for table in section.tables
            if table.rows
        ]
        figures = [{"src": data_uri(figure.png), "caption": figure.caption} for figure in section.figures]
        page.append(
            {
                "title": section.title,
                "intro": section.intro,
                "notes": section.notes,
                "tables": tables,
                "figures": figures,
                "preformatted": section.preformatted,
            }
        )
    return environment.from_string(TEMPLATE).render(title=title, subtitle=subtitle, sections=page)
