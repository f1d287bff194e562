"""Graph feedback: the picture of a failed gradient check's expression, with the student's
gradient and the expected one on every node and the first node where they differ marked.

``graph_dot(program, observed, expected)`` returns DOT text and ``graph_svg(...)`` renders it
with graphviz's ``dot`` program (None when ``dot`` is absent or fails: feedback then shows the
DOT text).
``observed`` and ``expected`` are observations as the gradient probes report them,
``{"data": [...], "grad": [...]}``, one entry per instruction of the program (probes.py).

"First" is in the order backward() visits nodes, from the root down: the highest-numbered
wrong node, since a program lists children before their parents. Everything below it may be
wrong only because it received a wrong gradient. "Wrong" is the judge's own comparison
(``judge.close``).

``add_to_feedback(folder, record, markdown)`` is what report.py calls: for each failed
*public* gradient check of a record it writes ``graphs/<check>.svg`` (or ``.dot``), returns
the feedback markdown with a section per picture, and writes ``feedback.html``, its twin,
for every record (so the class report links every student to the same kind of page).
Pictures are drawn from the numbers the judge observed (a test's ``observation``, from
``judge.Verdict.observation``), never from a verdict's text.
"""
import functools
import html
import re
import shutil
import subprocess
from pathlib import Path

from .. import judge, probes
from ..report import write_atomic

GRAPHS = "graphs"
FEEDBACK_HTML = "feedback.html"
SYMBOL = {"add": "+", "mul": "×", "sub": "−", "div": "÷", "pow": "**", "neg": "neg", "relu": "relu"}
WRONG_FIRST, WRONG, RIGHT = "#d62728", "#ff9f40", "#6b8e23"
# CommonMark's backslash escape: a backslash before ASCII punctuation (text.markdown_text writes them).
MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def first_difference(observed, expected):
    """The index of the first node, in backward() order, whose grad differs; None if none."""
    for i in reversed(range(len(expected["grad"]))):
        if not _close(observed["grad"][i], expected["grad"][i]):
            return i
    return None


def _close(a, b):
    return judge.is_number(a) and judge.is_number(b) and judge.close(a, b)


def _number(x):
    return f"{x:.4g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "?"


def graph_dot(program, observed, expected, title=""):
    """DOT text: one box per node (its expression, data, your grad, expected grad), an edge
    from each child to the node made from it, plain numbers as small grey ovals."""
    first = first_difference(observed, expected)
    lines = ["digraph feedback {", '  graph [rankdir=LR, fontname="Helvetica", fontsize=12, labelloc=t, '
             f'label="{_escape(title)}"];', '  node [fontname="Helvetica", fontsize=11];',
             '  edge [color="#777777", fontname="Helvetica", fontsize=11];']
    for i, (op, *args) in enumerate(program):
        symbol = _escape(SYMBOL.get(op.removesuffix("_c").removeprefix("c_"), op))
        grad, want = observed["grad"][i], expected["grad"][i]
        wrong = not _close(grad, want)
        colour = WRONG_FIRST if i == first else WRONG if wrong else RIGHT
        fill = "#fde0dc" if i == first else "#fff1e0" if wrong else "#f3f8ec"
        what = _escape_html(probes.describe(program, i))
        note = f'<tr><td colspan="2"><font color="{WRONG_FIRST}"><b>first difference</b></font></td></tr>' if i == first else ""
        label = (f'<<table border="0" cellborder="0" cellspacing="1">'
                 f'<tr><td colspan="2"><b>{what}</b>  data {_number(expected["data"][i])}</td></tr>'
                 f'<tr><td align="left">your grad</td><td align="right"><font color="{colour}"><b>'
                 f'{_number(grad)}</b></font></td></tr>'
                 f'<tr><td align="left">expected</td><td align="right">{_number(want)}</td></tr>{note}</table>>')
        width = 3 if i == first else 1.5 if wrong else 1
        lines.append(f'  n{i} [shape=box, style="rounded,filled", color="{colour}", fillcolor="{fill}", '
                     f'penwidth={width}, label={label}];')
        for j, child in enumerate(_children(op, args)):
            if isinstance(child, int):
                lines.append(f'  n{child} -> n{i} [label="{symbol}"];')
            else:
                constant = f"c{i}_{j}"
                lines.append(f'  {constant} [shape=oval, style=filled, fillcolor="#eeeeee", color="#bbbbbb", '
                             f'label="{_escape(repr(child))}"];')
                lines.append(f'  {constant} -> n{i} [label="{symbol}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _children(op, args):
    """Node indices (ints) and plain numbers (floats, as ("c", value)) an instruction uses."""
    if op == "leaf":
        return []
    if op in probes.BINARY:
        return [args[0], args[1]] if args[0] != args[1] else [args[0]]
    if op.endswith("_c"):
        return [args[0], _Constant(args[1])]
    if op.startswith("c_"):
        return [_Constant(args[0]), args[1]]
    if op == "pow":
        return [args[0], _Constant(args[1])]
    return [args[0]]  # neg, relu


class _Constant(float):
    def __repr__(self):
        return f"{float(self):g}"


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _escape_html(text):
    return html.escape(text, quote=True)


def graph_svg(program, observed, expected, title=""):
    """The picture as SVG text, or None when graphviz's ``dot`` is not installed."""
    if not shutil.which("dot"):
        return None
    return _render_svg(graph_dot(program, observed, expected, title))


DOT_SECONDS = 30  # one small graph renders in well under a second; generous for a loaded machine


@functools.lru_cache(maxsize=512)
def _render_svg(dot):
    """Rendered once per batch: students who share a bug fail a check with the same graph,
    and each ``dot`` run costs more CPU than grading a whole submission. None when ``dot``
    fails. ``dot`` is run directly, not through the ``graphviz`` package: the package only
    wraps this same call, offers no timeout, and is one more install without which pictures
    silently vanished."""
    try:
        done = subprocess.run([shutil.which("dot") or "dot", "-Tsvg"], input=dot.encode(), capture_output=True,
                              timeout=DOT_SECONDS, check=True)
        return done.stdout.decode("utf-8")
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):  # missing, crashed, too slow
        return None


# --- from a graded record ------------------------------------------------------------------


def pictures(record):
    """[(test, program, observed, expected, sweep note)] for each failed public gradient check
    whose test carries the judge's observation."""
    from .. import checks as catalogue

    by_id = {check.id: check for check in catalogue.CHECKS}
    found = []
    for test in record.get("tests", []):
        check = by_id.get(test.get("check"))
        observation = test.get("observation")
        if (test.get("passed") or test.get("visibility") != "public" or check is None
                or check.judge != "gradients" or not isinstance(observation, dict)):
            continue
        params = check.concrete_params(record.get("seed"))
        pair = _pair(params["program"], observation)
        if pair and first_difference(*pair) is not None:
            if params.get("sweep", "backward") == "backward":
                sweep = "after backward()"
            elif params.get("grads") or params.get("steps") is not None:  # several steps, grads held before
                sweep = f"after {judge.what_ran(params)}"
            else:
                sweep = f"after only the root's _backward(), with out.grad = {params.get('upstream', 1.0):g}"
            found.append((test, params["program"], *pair, sweep))
    return found


def _pair(program, observation):
    """(observed, expected) from a judge's observation, or None when it does not fit the program."""
    data, grad, want = (observation.get(k) for k in ("data", "grad", "expected_grad"))
    if not all(isinstance(x, list) and len(x) == len(program) for x in (data, grad, want)):
        return None
    return {"data": data, "grad": grad}, {"data": data, "grad": want}


def add_to_feedback(folder, record, markdown):
    """Write the pictures and feedback.html into ``folder``; return ``markdown`` with a section
    per picture. Never raises: feedback without pictures beats no feedback."""
    try:
        return _add_to_feedback(Path(folder), record, markdown)
    except Exception:  # a picture is a bonus: never lose the feedback, or its page, over one
        try:
            write_atomic(Path(folder) / FEEDBACK_HTML, markdown_to_html(markdown))
        except Exception:
            pass  # report.py writes feedback.md next, and fails loudly if the disk is the problem
        return markdown


def _add_to_feedback(folder, record, markdown):
    found = pictures(record)
    sections, figures = [], {}
    if found:
        (folder / GRAPHS).mkdir(exist_ok=True)
        sections = ["", "## Pictures of your failed gradient checks", "",
                    "Each box is a node: its expression, its value, your gradient and the expected one. "
                    f"The node outlined in red is the first, from the root down, whose gradient differs; "
                    "orange nodes differ too, green ones match.", ""]
    for test, program, observed, expected, sweep in found:
        title = f"{probes.describe(program)}: {sweep}"
        svg = graph_svg(program, observed, expected, title)
        name = test["check"]
        sections += [f"### {test['title']}", ""]
        if svg:
            write_atomic(folder / GRAPHS / f"{name}.svg", svg)
            sections += [f"![graph of {probes.describe(program)}]({GRAPHS}/{name}.svg)", ""]
            figures[name] = svg
        else:
            dot = graph_dot(program, observed, expected, title)
            write_atomic(folder / GRAPHS / f"{name}.dot", dot)
            sections += ["```dot", dot.rstrip(), "```", ""]
        first = first_difference(observed, expected)
        sections += ["| node | your grad | expected grad |", "| --- | ---: | ---: |"]
        for i in reversed(range(len(program))):
            mark = " **← first difference**" if i == first else ""
            sections.append(f"| `{probes.describe(program, i)}`{mark} | {_number(observed['grad'][i])} "
                            f"| {_number(expected['grad'][i])} |")
        sections.append("")
    text = markdown.rstrip("\n") + "\n" + "\n".join(sections) if sections else markdown
    write_atomic(folder / FEEDBACK_HTML, markdown_to_html(text, figures))
    return text if text.endswith("\n") else text + "\n"


# --- the HTML twin ---------------------------------------------------------------------------


def markdown_to_html(markdown, figures=None):
    """The feedback's small markdown (headings, bullets, bold, code, tables, images of graphs)
    as a standalone HTML page; ``figures`` maps a check id to SVG text put inline."""
    figures = figures or {}
    body, state = [], {"list": False, "table": []}

    def inline(text):
        # A backslash-escaped character (text.markdown_text's, CommonMark's rule) is that
        # character, never markup: held aside while bold and code are found, then put back.
        held = []

        def hold(match):
            held.append(match.group(1))
            return f"\x00{len(held) - 1}\x00"

        def put_back(text, escaped=False):  # in a code span a backslash is literal, as in CommonMark
            return re.sub("\x00(\\d+)\x00", lambda m: html.escape(("\\" if escaped else "") + held[int(m.group(1))]), text)

        text = html.escape(MARKDOWN_ESCAPE.sub(hold, text))
        text = re.sub(r"`(.+?)`", lambda m: f"<code>{put_back(m.group(1), escaped=True)}</code>", text)
        return put_back(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text))

    def cells(row):
        return [c.strip() for c in row.strip().strip("|").split("|")]

    def close():
        if state["list"]:
            body.append("</ul>")
            state["list"] = False
        rows = [r for r in state["table"] if not re.fullmatch(r"\|[\s\-:|]+\|", r.strip())]
        if rows:
            body.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells(rows[0])) + "</tr>")
            body.extend("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in cells(r)) + "</tr>" for r in rows[1:])
            body.append("</table>")
        state["table"] = []

    lines = iter(markdown.splitlines())
    for line in lines:
        bullet = re.match(r"( *)- (.*)", line)
        image = re.fullmatch(r"!\[(.*)\]\(" + GRAPHS + r"/(.+)\.svg\)", line)
        if line.startswith("|"):
            if state["list"]:
                close()
            state["table"].append(line)
            continue
        if bullet:
            if state["table"]:
                close()
            if not state["list"]:
                body.append("<ul>")
                state["list"] = True
            nested = " class=sub" if bullet.group(1) else ""
            body.append(f"<li{nested}>{inline(bullet.group(2))}</li>")
            continue
        close()
        if line.startswith("```"):
            code = []
            for code_line in lines:
                if code_line.startswith("```"):
                    break
                code.append(html.escape(code_line))
            body.append("<pre>" + "\n".join(code) + "</pre>")
        elif image:
            svg = figures.get(image.group(2), "")
            body.append(f'<figure>{svg[svg.find("<svg"):]}<figcaption>{inline(image.group(1))}</figcaption></figure>')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    close()
    title = html.escape(MARKDOWN_ESCAPE.sub(r"\1", markdown.splitlines()[0].lstrip("# ")) if markdown else "Feedback")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }}
h1 {{ font-size: 1.6rem; }} h2 {{ font-size: 1.25rem; border-bottom: 1px solid #ddd; margin-top: 1.6rem; }}
li.sub {{ list-style: none; margin-left: 1.2rem; color: #444; }}
code {{ background: #f3f3f3; padding: 0 .2rem; border-radius: 3px; }}
pre {{ background: #f6f6f6; padding: .8rem; overflow-x: auto; }}
table {{ border-collapse: collapse; margin: .6rem 0; }} td, th {{ border: 1px solid #ddd; padding: .2rem .6rem; }}
figure {{ margin: 1rem 0; }} figure svg {{ max-width: 100%; height: auto; }}
figcaption {{ color: #666; font-size: .9rem; }}
</style></head>
<body>
{chr(10).join(body)}
</body></html>
"""
