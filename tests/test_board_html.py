"""exmake.boardhtml: ANSI colours to HTML, and escaping in every SVG and page piece."""

from exmake.boardhtml import ansi_html, bar_chart, layered_graph, page, timeline


def test_sgr_codes_become_classed_spans_and_text_is_escaped():
    assert ansi_html("\x1b[1;31mbad <b>\x1b[0m ok") == '<span class="a-b f1">bad &lt;b&gt;</span> ok'
    assert ansi_html("\x1b[92mgreen\x1b[39m plain") == '<span class="f10">green</span> plain'
    assert ansi_html("\x1b[44mon blue\x1b[49m") == '<span class="b4">on blue</span>'
    assert ansi_html("\x1b[38;5;196mx\x1b[m") == '<span style="color:rgb(255,0,0)">x</span>'
    assert ansi_html("\x1b[38;2;999;1;2mx") == '<span style="color:rgb(255,1,2)">x</span>'
    assert ansi_html("\x1b[4munder\x1b[24m") == '<span class="a-u">under</span>'


def test_other_escape_sequences_are_dropped_not_shown():
    assert ansi_html("a\x1b[2Kb\x1b]0;title\x07c\x1b[10;5Hd") == "abcd"
    assert ansi_html("line\r\nnext") == "line\nnext"


def test_a_malformed_or_huge_code_yields_no_markup_from_the_job():
    out = ansi_html("\x1b[38;5mx\x1b[38;2;1mY\x1b[" + "9" * 70 + "mz")
    assert "<script" not in out and out.endswith("z") and "Y" in out


def test_svg_labels_and_links_are_escaped():
    hostile = '<script>alert(1)</script>"'
    for svg in (bar_chart([(hostile, 1.0, "stage")]), timeline([(hostile, 0, 1, "ok", '"><x', [(0, 1)])]),
                layered_graph([[("a", hostile, '"><x', "ok")], [("b", "b", None, "here")]], [("a", "b")])):
        assert "<script>" not in svg and '"><x' not in svg and "&lt;script&gt;" in svg


def test_page_escapes_its_title_and_carries_the_nonce_policy():
    html = page("<t>", "<p>body</p>", "NONCE", script="1;")
    assert "<title>&lt;t&gt;</title>" in html and '<script nonce="NONCE">1;</script>' in html
    assert "script-src &#x27;nonce-NONCE&#x27;" in html
