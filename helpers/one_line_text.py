"""Names and labels are one line of plain text: they go into email subjects and bodies, the
audit log and CSV downloads, where a line break or another control character breaks a header
or starts a line that was never typed."""

import re

from django import forms

# C0 controls (CR and LF among them), DEL, C1 controls and the Unicode line separators. The
# account name goes into every email's Subject, where a line break makes the mail library refuse
# the message (BadHeaderError) and the email stays pending for ever. And the text-direction
# embeddings, overrides and isolates: "Eve \u202egnp.exe" shows as "Eve exe.png", in the audit
# log too (the marks LRM and RLM, which only nudge neutral characters, stay).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def refuse_control_characters(value):
    if _CONTROL_CHARACTERS.search(value):
        raise forms.ValidationError(
            "Remove the line breaks, tabs and other control characters (text-direction "
            "overrides too): a name is one line of plain text.",
            code="control_characters",
        )


def one_line(value):
    """`value` as one line: control characters and line breaks become spaces, runs of
    whitespace one space. For names that come from elsewhere (a CRM, a file), which are kept
    rather than refused."""
    return " ".join(_CONTROL_CHARACTERS.sub(" ", value or "").split())
