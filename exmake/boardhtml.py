"""HTML pieces shared by the board and the HTML report: escaping, the page
shell, ANSI colours, tables, and inline SVG charts and graphs.

Pure: takes plain data and returns text; reads no file and imports nothing
of exmake. Everything that came from a recipe, a job, a file or a request
goes through `esc` (or `ansi_html`, which escapes) before it reaches a page:
a job whose output, option or file name holds `<script>` must show those
characters, never run them. As a second wall each page carries a Content
Security Policy that lets only the page's own script (by its nonce) run and
fetches nothing from elsewhere; the report works as one file for the same
reason (CSS, script and SVG all inline).
"""

import html
import re
import secrets
from urllib.parse import quote

STATE_COLOURS = {  # CSS classes per state; the colours are in STYLE
    "fresh": "ok", "built": "ok", "reused": "ok", "SUCCESS": "ok",
    "stale": "warn", "never built": "warn", "running": "run", "submitted": "run",
    "failed": "bad", "FAILURE": "bad", "INTERRUPTED": "bad", "skipped": "dim",
}

STYLE = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--run:#0969da;--dim:#6e7781;--line:#d0d7de}
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}
header{background:#24292f;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:baseline}
header a{color:#fff;text-decoration:none;font-weight:600}
header .where{color:#afb8c1;font-size:12px}
main{padding:12px 16px;max-width:1200px}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:18px 0 6px;border-bottom:1px solid var(--line)}
table{border-collapse:collapse;margin:4px 0}
td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top;border-bottom:1px solid #eaeef2}
th{font-weight:600;color:#57606a}td:first-child{white-space:nowrap}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
pre{background:#f6f8fa;border:1px solid var(--line);padding:8px;overflow:auto;max-height:480px;margin:4px 0}
.state{font-weight:600}.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
.run{color:var(--run)}.dim{color:var(--dim)}
.banner{background:#fff8c5;border:1px solid #d4a72c;padding:8px;margin:8px 0}
.banner.bad{background:#ffebe9;border-color:#cf222e}
.pager a,.pager span{margin-right:10px}
.reasons{color:#57606a}
details{margin:2px 0}summary{cursor:pointer}
img.preview{max-width:100%;border:1px solid var(--line)}
svg text{font:11px system-ui,sans-serif}
svg a text{fill:#0969da}
.a-b{font-weight:700}.a-d{opacity:.7}.a-i{font-style:italic}.a-u{text-decoration:underline}
.f0{color:#24292f}.f1{color:#cf222e}.f2{color:#116329}.f3{color:#9a6700}.f4{color:#0550ae}
.f5{color:#8250df}.f6{color:#1b7c83}.f7{color:#6e7781}.f8{color:#57606a}.f9{color:#ff5c57}
.f10{color:#2da44e}.f11{color:#bf8700}.f12{color:#218bff}.f13{color:#a475f9}.f14{color:#3192aa}.f15{color:#8c959f}
.b0{background:#24292f;color:#fff}.b1{background:#ffebe9}.b2{background:#dafbe1}.b3{background:#fff8c5}
.b4{background:#ddf4ff}.b5{background:#fbefff}.b6{background:#e0f7f8}.b7{background:#eaeef2}
"""


def esc(value):
    """`value` as HTML text (also safe inside a quoted attribute)."""
    return html.escape(str(value), quote=True)


def new_nonce():
    return secrets.token_urlsafe(16)


def quote_path(text, safe="/"):
    """`text` percent-encoded for a URL. A file name that is not UTF-8 (Python
    holds its bytes as surrogates) is encoded as those very bytes, so the
    link leads back to the file (the board decodes the same way)."""
    return quote(text.encode("utf-8", "surrogateescape"), safe=safe)


def encode_page(text):
    """A page as UTF-8; a non-UTF-8 file name's bytes show as U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode()


def csp(nonce, header=True):
    """The page's Content Security Policy: its own nonce'd script only, and
    nothing fetched from elsewhere (images and links to this server are 'self').
    frame-ancestors only in the response header: browsers ignore it in a
    <meta> tag and log an error for it there."""
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'"
            + ("; frame-ancestors 'none'" if header else ""))


def page(title, body, nonce, script="", where="", home="/"):
    """A whole HTML document. `body` and `script` are already HTML/JS; `title`
    and `where` are plain text. `home`: the header link (None: no link)."""
    brand = f'<a href="{esc(home)}">exmake board</a>' if home else "<b>exmake report</b>"
    script_tag = f'<script nonce="{esc(nonce)}">{script}</script>' if script else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{esc(csp(nonce, header=False))}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'  # no /favicon.ico request, no 404 in the console
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n"
            f'<body><header>{brand}<span class="where">{esc(where)}</span></header>\n'
            f"<main>{body}</main>{script_tag}</body></html>\n")


def state_span(state, text=None):
    return f'<span class="state {STATE_COLOURS.get(state, "")}">{esc(text if text is not None else state)}</span>'


def link(href, text):
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def table(headers, rows, attrs=""):
    """A table; `rows` hold HTML cells already (escape what goes in)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pre(text):
    return f"<pre>{esc(text)}</pre>"


def human_bytes(count):
    if not _number(count):
        return "" if count is None else str(count)[:100]   # a record a job wrote itself may hold anything
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def seconds(value):
    if not _number(value):
        return "" if value is None else str(value)[:100]
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


# -- ANSI colours -------------------------------------------------------------

SGR_RE = re.compile(r"\x1b\[([0-9;]{0,64})m")
# Other escape sequences (cursor moves, titles, erase line) mean nothing in a
# page: dropped. The text between them is escaped as any other.
OTHER_ESCAPE_RE = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def ansi_html(text):
    """Terminal text with SGR colour codes as escaped HTML with classed spans.
    Only a closed set of class names and `rgb(N,N,N)` with whole numbers can
    come out of a code, so no attribute ever holds text from the job."""
    out, state = [], {}
    pos = 0
    for match in SGR_RE.finditer(text):
        out.append(_span(text[pos:match.start()], state))
        _apply_sgr(state, match.group(1))
        pos = match.end()
    out.append(_span(text[pos:], state))
    return "".join(out)


def _span(text, state):
    text = OTHER_ESCAPE_RE.sub("", text).replace("\r\n", "\n")
    if not text:
        return ""
    if not state:
        return esc(text)
    classes = " ".join(v for k, v in sorted(state.items()) if k in ("b", "d", "i", "u", "fg", "bg")
                       and not v.startswith("rgb"))
    styles = ";".join(f"{'color' if k == 'fg' else 'background'}:{v}" for k, v in sorted(state.items())
                      if k in ("fg", "bg") and v.startswith("rgb"))
    attrs = (f' class="{classes}"' if classes else "") + (f' style="{styles}"' if styles else "")
    return f'<span{attrs}>{esc(text)}</span>'


FLAGS = {1: ("b", "a-b"), 2: ("d", "a-d"), 3: ("i", "a-i"), 4: ("u", "a-u")}
UNSET = {22: ("b", "d"), 23: ("i",), 24: ("u",), 39: ("fg",), 49: ("bg",)}


def _apply_sgr(state, params):
    codes = [int(c) if c.isdigit() else 0 for c in (params.split(";") if params else ["0"])]
    index = 0
    while index < len(codes):
        code = codes[index]
        index += 1
        if code == 0:
            state.clear()
        elif code in FLAGS:
            state[FLAGS[code][0]] = FLAGS[code][1]
        elif code in UNSET:
            for key in UNSET[code]:
                state.pop(key, None)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            state["fg"] = f"f{code - 30 if code < 90 else code - 82}"
        elif 40 <= code <= 47 or 100 <= code <= 107:
            state["bg"] = f"b{(code - 40 if code < 100 else code - 100)}"
        elif code in (38, 48) and index < len(codes):
            colour, index = _extended_colour(codes, index)
            if colour:
                state["fg" if code == 38 else "bg"] = colour


def _extended_colour(codes, index):
    """(`f3`-like class or `rgb(...)`, next index) for `38;5;N` and `38;2;R;G;B`."""
    kind = codes[index]
    if kind == 5 and index + 1 < len(codes):
        n = codes[index + 1]
        return (f"f{n}" if n < 16 else _xterm_rgb(n)), index + 2
    if kind == 2 and index + 3 < len(codes):
        r, g, b = (min(255, c) for c in codes[index + 1:index + 4])
        return f"rgb({r},{g},{b})", index + 4
    return None, len(codes)


def _xterm_rgb(n):
    n = min(n, 255)
    if n >= 232:
        level = 8 + (n - 232) * 10
        return f"rgb({level},{level},{level})"
    n -= 16
    steps = [0, 95, 135, 175, 215, 255]
    return f"rgb({steps[n // 36]},{steps[n // 6 % 6]},{steps[n % 6]})"


# -- inline SVG -----------------------------------------------------------------

def bar_chart(rows, unit=seconds, width=640):
    """Horizontal bars: `rows` = [(label, value, css class)]; value >= 0."""
    if not rows:
        return ""
    top = max(value for _, value, _ in rows) or 1
    label_w, bar_w, row_h = 150, width - 150 - 90, 18
    parts = [f'<svg role="img" aria-label="timings" width="{width}" height="{row_h * len(rows) + 4}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for n, (label, value, css) in enumerate(rows):
        y = n * row_h + 2
        w = max(1.0, bar_w * value / top)
        parts.append(f'<text x="0" y="{y + 12}">{esc(label)}</text>'
                     f'<rect class="bar {esc(css)}" x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 5}" '
                     f'fill="{BAR_FILL.get(css, "#0969da")}"><title>{esc(label)}: {esc(unit(value))}</title></rect>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 12}">{esc(unit(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


BAR_FILL = {"ok": "#2da44e", "bad": "#cf222e", "warn": "#bf8700", "run": "#218bff", "dim": "#8c959f",
            "slice": "#54aeff", "stage": "#0969da"}


def timeline(rows, width=900):
    """A Gantt chart: `rows` = [(label, start_s, end_s, css class, href or None,
    [(slice start_s, slice end_s)])], times from the build's start."""
    if not rows:
        return ""
    end = max(r[2] for r in rows) or 1
    label_w, row_h = 190, 18
    span_w = width - label_w - 70
    parts = [f'<svg role="img" aria-label="timeline" width="{width}" height="{row_h * len(rows) + 24}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for n, (label, start, stop, css, href, slices) in enumerate(rows):
        y = n * row_h + 2
        x, w = label_w + span_w * start / end, max(1.0, span_w * (stop - start) / end)
        text = f'<text x="0" y="{y + 12}">{esc(label)}</text>'
        parts.append(f'<a href="{esc(href)}">{text}</a>' if href else text)
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 5}" '
                     f'fill="{BAR_FILL.get(css, "#0969da")}"><title>{esc(label)}: {esc(seconds(start))} '
                     f'to {esc(seconds(stop))}</title></rect>')
        for a, b in slices:
            sx, sw = label_w + span_w * a / end, max(1.0, span_w * (b - a) / end)
            parts.append(f'<rect x="{sx:.1f}" y="{y + row_h - 8}" width="{sw:.1f}" height="3" fill="#54aeff"/>')
        parts.append(f'<text x="{x + w + 4:.1f}" y="{y + 12}">{esc(seconds(stop - start))}</text>')
    axis_y = row_h * len(rows) + 16
    parts.append(f'<text x="{label_w}" y="{axis_y}">0</text>'
                 f'<text x="{label_w + span_w - 30}" y="{axis_y}">{esc(seconds(end))}</text></svg>')
    return "".join(parts)


MAX_GRAPH_NODES = 25   # per column of a graph; more are summed up in one box


def layered_graph(layers, edges, width=900):
    """Columns of boxes with arrows: `layers` = [[(node id, label, href or None,
    css class)]] left to right, `edges` = [(from id, to id)]."""
    col_w, box_w, box_h, gap = width // max(1, len(layers)), min(240, width // max(1, len(layers)) - 40), 22, 8
    where, parts, tallest = {}, [], 0
    for col, nodes in enumerate(layers):
        shown = list(nodes[:MAX_GRAPH_NODES])
        if len(nodes) > MAX_GRAPH_NODES:
            shown.append((None, f"and {len(nodes) - MAX_GRAPH_NODES} more", None, "dim"))
        tallest = max(tallest, len(shown))
        for row, (node, label, href, css) in enumerate(shown):
            x, y = col * col_w + 10, row * (box_h + gap) + 4
            where[node] = (x, y)
            text = f'<text x="{x + 6}" y="{y + 15}">{esc(label[:34])}</text>'
            box = (f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="4" fill="#f6f8fa" '
                   f'stroke="{BAR_FILL.get(css, "#8c959f")}" stroke-width="{2 if css == "here" else 1}"/>')
            parts.append(box + (f'<a href="{esc(href)}">{text}</a>' if href else text))
    lines = []
    for a, b in edges:
        if a in where and b in where:
            (x1, y1), (x2, y2) = where[a], where[b]
            lines.append(f'<line x1="{x1 + box_w}" y1="{y1 + box_h / 2}" x2="{x2}" y2="{y2 + box_h / 2}" '
                         'stroke="#8c959f" marker-end="url(#arrow)"/>')
    height = tallest * (box_h + gap) + 8
    return (f'<svg role="img" aria-label="dependencies" width="{width}" height="{height}" '
            'xmlns="http://www.w3.org/2000/svg"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" '
            'refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" '
            'fill="#8c959f"/></marker></defs>' + "".join(lines) + "".join(parts) + "</svg>")
