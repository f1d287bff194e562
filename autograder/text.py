"""Text a submission chose, made safe to show: the one gate between a student's strings and a
message, a file, a terminal, a CSV cell or a page.

Everything that comes from a submission is untrusted: exception messages, type and function
names, reprs, what it printed, its file and folder names. ``untrusted(text, limit)`` is the
only function that turns such a value into text the grader may write or print. Its result

- is valid UTF-8 (lone surrogates, which Python strings may hold but no encoder writes,
  become U+FFFD);
- holds no control characters: C0 and C1 controls (ESC, BEL, NUL, CR ...), DEL, the bidi
  overrides and isolates that reorder what a reader sees, and line or paragraph separators,
  each shown as ``?`` (newlines and tabs are kept only when ``lines=True``, for output.txt);
- is at most ``limit`` characters, a cut marked with ``…`` and the original length.

The grader's own write budget lives here too (``MESSAGE``, ``DETAIL``, ``SUBMISSION``, ...):
how much text one check, and one submission in all, may make the grader write.

``markdown_text(text, limit)`` is ``untrusted`` for a Markdown file (feedback.md): the same
clean text, every character Markdown or inline HTML would act on escaped, so a viewer shows it
as it is written (no image fetched, no link, no bold "passed").

``spreadsheet_cell`` / ``from_spreadsheet_cell`` neutralise a CSV cell that a spreadsheet
would evaluate as a formula, and undo it on reading (OWASP's CSV-injection advice).
"""
import re

# --- the write budget: characters of untrusted text per place, and per submission ----------
NAME = 200  # a submission id, a file or function name, an exception's type name
MESSAGE = 1_000  # a check's message (shown for every check)
DETAIL = 4_000  # a check's detail (public checks, instructors)
NOTE = 500  # a note on a notebook cell that raised or ran long
SUBMISSION = 60_000  # every message, detail and note of one submission together
OUTPUT = 256 * 1024  # what a submission printed, kept in output.txt (the worker caps it first)

_SURROGATE = re.compile(r"[\ud800-\udfff]")
# C0 and C1 controls and DEL; the bidi embeddings, overrides and isolates; LRM, RLM, ALM;
# the line and paragraph separators (a new line in JSON and JavaScript, invisible elsewhere).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def untrusted(text, limit=MESSAGE, lines=False):
    """``text`` (any value: a str, bytes, None, an object) as clean text of at most ``limit``
    characters. Cut first, then cleaned, so a 4 MB string costs no more than a short one.
    ``lines`` keeps newlines and tabs (a CR becomes a newline: on a terminal it would return
    to the line's start and overwrite it)."""
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text[: 4 * limit + 4]).decode("utf-8", "replace")
    elif not isinstance(text, str):
        try:
            text = str(text)
        except Exception:  # an object whose __str__ fails: say what it is, not what it says
            text = f"<{type(text).__name__}>"
    total = len(text)
    if total > limit:
        marker = f"… ({total:,} characters, cut)"
        text = text[: max(limit - len(marker), 0)] + marker if limit > len(marker) else text[:limit]
    text = _SURROGATE.sub("\ufffd", text)
    if lines:  # a carriage return (a progress bar's) would overwrite the line on a terminal
        return _CONTROL_KEEP_LINES.sub("?", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub("?", text)


# What a Markdown viewer (CommonMark, GitHub's) acts on anywhere in a line: backslash escapes,
# code spans, emphasis, links and images ([ ]), raw HTML and <autolinks>, entities (&#x202e;
# is a bidi override again), strikethrough, table cells, math.
_MARKDOWN_INLINE = re.compile(r"[\\`*_\[\]<>&|~$]")
# ... at the start of a line's text (a list item's): a heading, a list item, a setext underline.
_MARKDOWN_START = re.compile(r"^(?:[#+=-]|\d{1,9}(?=[.)]))")
# Bare links a viewer makes clickable without any markup: "http://", "www.".
_MARKDOWN_BARE_LINK = re.compile(r"(?<=[A-Za-z]):(?=//)|(?<=\b[Ww]{3})\.")


def markdown_text(text, limit=MESSAGE):
    """``untrusted(text, limit)`` as Markdown that renders as exactly that text, on one line:
    every character Markdown or inline HTML gives a meaning to gets CommonMark's backslash
    escape, and blanks around it are dropped (leading ones would make an indented code
    block). At most twice ``limit`` characters. The only way student-derived text enters
    a Markdown file; the kit's own markup around it stays markup."""
    text = untrusted(text, limit).strip()
    text = _MARKDOWN_INLINE.sub(lambda m: "\\" + m.group(), text)
    text = _MARKDOWN_BARE_LINK.sub(lambda m: "\\" + m.group(), text)
    start = _MARKDOWN_START.match(text)  # "1." -> "1\.", "- x" -> "\- x"
    if start:
        end = start.end()
        text = (text[:end] + "\\" + text[end:]) if start.group()[0].isdigit() else "\\" + text
    return text


def plural(count, noun, nouns=None):
    """"1 submission", "2 submissions" (``nouns`` for an irregular plural)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


# --- CSV cells ------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value):
    """A CSV cell that Excel, LibreOffice or Google Sheets shows as text: a string that starts
    like a formula (``= + - @``, a tab or a carriage return) gets a leading single quote.
    So that ``from_spreadsheet_cell`` restores any string exactly, a string that starts with
    a quote already gets one more when it would otherwise be read back shorter. Numbers and
    every other string are written as they are."""
    if isinstance(value, str) and (value.startswith(_FORMULA_START) or _quoted(value)):
        return "'" + value
    return value


def from_spreadsheet_cell(value):
    """The string ``spreadsheet_cell`` was given."""
    return value[1:] if isinstance(value, str) and _quoted(value) else value


def _quoted(value):
    return value.startswith("'") and value[1:].startswith((*_FORMULA_START, "'"))
