"""Read and map stages of the CSV import (imports.csv_reader, imports.column_mapping): the shared
sample files give what their README says at this stage, and generated files cover what the
samples cannot (size, streaming, chunk boundaries, encodings, separators). No database."""

import codecs
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from helpers.spreadsheet_safety import neutralise
from imports.column_mapping import (
    PORTAL_USER_FIELDS,
    Field,
    MappingError,
    auto_map,
    manual_map,
    map_columns,
    row_values,
    validate_mapping,
)
from imports.csv_reader import SNIFF_BYTES, CsvError, column_letter, read_csv
from tests.samples import sample_path, samples_dir

MB = 1024 * 1024
LIMIT = 50 * MB
REPO = Path(__file__).resolve().parents[1]

GOOD_SAMPLES = [
    "portal-users-template.csv",
    "portal-users-mixed.csv",
    "portal-users-bom-crlf.csv",
    "portal-users-semicolon.csv",
    "portal-users-cp1252.csv",
    "portal-users-quoted.csv",
    "portal-users-odd-header.csv",
    "portal-users-formula.csv",
    "bad-trailing-blank-lines.csv",
    "bad-no-role-column.csv",  # reads fine; mapping refuses it
]
# File → words the message must contain: what is wrong, and what to do about it.
BAD_SAMPLES = {
    "bad-empty.csv": ["The file is empty.", "with a header row (ContactId, Role)", "upload it"],
    "bad-header-only.csv": ["header but no rows", "Add the rows to import", "upload the file"],
    "bad-duplicate-header.csv": [
        "The column 'Role' appears twice (columns B and C).",
        "Remove or rename one.",
    ],
    "bad-xlsx-renamed.csv": [
        "This looks like an Excel workbook (.xlsx), not a CSV file.",
        "In Excel choose File › Save As › CSV UTF-8 and upload that file.",
    ],
}
WORLD_FILES = ["contacts.csv", "roles.csv"]


def read_sample(name):
    with sample_path(name).open("rb") as file:
        csv_file = read_csv(file, max_bytes=LIMIT)
        return csv_file, list(csv_file.rows())


def read_bytes(data, **kwargs):
    csv_file = read_csv(io.BytesIO(data), max_bytes=kwargs.pop("max_bytes", LIMIT), **kwargs)
    return csv_file, list(csv_file.rows())


class Trickle(io.RawIOBase):
    """At most `step` bytes per read and no seeking, like a slow upload stream: every chunk
    boundary the reader handles falls somewhere awkward."""

    def __init__(self, data, step):
        self._data = memoryview(data)
        self._step = step

    def readable(self):
        return True

    def readinto(self, buffer):
        size = min(len(buffer), self._step, len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size


# --- The shared samples ---


def test_every_sample_file_is_covered():
    on_disk = {path.name for path in samples_dir().glob("*.csv")}
    assert on_disk == set(GOOD_SAMPLES) | set(BAD_SAMPLES) | set(WORLD_FILES)


def test_template():
    csv_file, rows = read_sample("portal-users-template.csv")
    assert (csv_file.encoding, csv_file.delimiter) == ("utf-8", ",")
    assert csv_file.header == ["ContactId", "Role"]
    assert rows == [
        (2, ["003iK2ZWeqhFWCEPyYn", "Partner User"]),
        (3, ["003CrUZoL8g5ubbbPIa", "Customer User"]),
    ]
    assert map_columns(csv_file.header, PORTAL_USER_FIELDS) == {"contact_id": 0, "role": 1}


def test_bom_and_crlf_read_like_the_template():
    csv_file, rows = read_sample("portal-users-bom-crlf.csv")
    _, template_rows = read_sample("portal-users-template.csv")
    assert csv_file.encoding == "utf-8-sig"
    assert csv_file.header == ["ContactId", "Role"]  # no BOM left on the first header
    assert rows == [
        (2, ["003iK2ZWeqhFWCEPyYn", "Partner User"]),
        (3, ["003CrUZoL8g5ubbbPIa", "Partner User"]),
    ]
    assert [cells[0] for _, cells in rows] == [cells[0] for _, cells in template_rows]


def test_semicolon_reads_like_the_template():
    csv_file, rows = read_sample("portal-users-semicolon.csv")
    _, template_rows = read_sample("portal-users-template.csv")
    assert csv_file.delimiter == ";"
    assert csv_file.header == ["ContactId", "Role"]
    # Same contacts and lines as the template; this file gives both of them Partner User.
    assert [(line, cells[0]) for line, cells in rows] == [
        (line, cells[0]) for line, cells in template_rows
    ]
    assert [cells[1] for _, cells in rows] == ["Partner User", "Partner User"]


def test_cp1252_is_detected_and_decoded_without_mojibake():
    csv_file, rows = read_sample("portal-users-cp1252.csv")
    _, contacts = read_sample("contacts.csv")
    zoe_name = next(cells[2] for _, cells in contacts if cells[0] == "0032et68tVkAKqiaJ42")
    assert (csv_file.encoding, csv_file.encoding_label) == ("cp1252", "Windows-1252")
    assert csv_file.header == ["ContactId", "Role", "Notes"]
    assert rows == [
        (2, ["003iK2ZWeqhFWCEPyYn", "Partner User", "café crème"]),
        (3, ["0032et68tVkAKqiaJ42", "Partner User", "Zoë"]),
    ]
    assert zoe_name == "Zoë Ångström"
    assert zoe_name.startswith(rows[1][1][2])


def test_quoted_cells_keep_commas_quotes_and_newlines():
    csv_file, rows = read_sample("portal-users-quoted.csv")
    assert csv_file.header == ["ContactId", "Role", "Notes"]
    assert rows == [
        (2, ["003iK2ZWeqhFWCEPyYn", "Partner User", "line one\nline two, with a comma"]),
        (4, ["003CrUZoL8g5ubbbPIa", "Partner User", 'she said "hi"']),
    ]


def test_odd_header_is_auto_mapped_and_email_ignored():
    csv_file, rows = read_sample("portal-users-odd-header.csv")
    assert csv_file.header == ["contact id", "ROLE", "Email"]
    mapping = map_columns(csv_file.header, PORTAL_USER_FIELDS)
    assert mapping == {"contact_id": 0, "role": 1}
    assert row_values(mapping, rows[0][1]) == {
        "contact_id": "003iK2ZWeqhFWCEPyYn",
        "role": "Partner User",
    }


def test_formula_cells_are_read_as_written():
    """Neutralising is for the failure file; the reader must hand on the original values."""
    csv_file, rows = read_sample("portal-users-formula.csv")
    assert csv_file.header == ["ContactId", "Role", "Notes"]
    assert rows == [
        (2, ['=HYPERLINK("http://evil.example","x")', "Partner User", "+cmd"]),
        (3, ["003CrUZoL8g5ubbbPIa", "@SUM(A1)", "-1"]),
    ]
    assert all(neutralise(cell).startswith("'") for cell in (rows[0][1][0], rows[1][1][1]))


def test_trailing_blank_lines_are_not_rows():
    _, rows = read_sample("bad-trailing-blank-lines.csv")
    assert rows == [(2, ["003iK2ZWeqhFWCEPyYn", "Partner User"])]


def test_mixed_gives_fifteen_rows_with_their_lines():
    csv_file, rows = read_sample("portal-users-mixed.csv")
    assert csv_file.header == ["ContactId", "Role", "Expect"]
    assert [line for line, _ in rows] == list(range(2, 17))
    cells = dict(rows)
    assert cells[5] == [
        "003v5UTG79BG16QmtsL",
        "partner user",
        "failed: role not found, suggest 'Partner User'",
    ]
    assert cells[6][:2] == ["003ZzAQlxJ4SXRVxfCQ", ""]
    assert cells[12][:2] == ["", "Partner User"]
    assert cells[15] == [
        "003mqgq5UGn9MB0bobz",
        "Partner User",
        "created (surrounding spaces trimmed)",
    ]
    mapping = map_columns(csv_file.header, PORTAL_USER_FIELDS)
    assert mapping == {"contact_id": 0, "role": 1}  # Expect is not imported


@pytest.mark.parametrize("name", sorted(BAD_SAMPLES))
def test_bad_samples_say_what_is_wrong_and_what_to_do(name):
    with pytest.raises(CsvError) as raised:
        read_sample(name)
    for words in BAD_SAMPLES[name]:
        assert words in raised.value.message


def test_no_role_column_is_a_mapping_error():
    csv_file, rows = read_sample("bad-no-role-column.csv")
    assert csv_file.header == ["ContactId", "Name"]
    assert len(rows) == 1
    with pytest.raises(MappingError) as raised:
        map_columns(csv_file.header, PORTAL_USER_FIELDS)
    assert raised.value.messages == [
        "No Role column. Add a column named Role, or pick which column holds the role."
    ]


def test_a_django_upload_is_read_like_the_open_file():
    data = sample_path("portal-users-mixed.csv").read_bytes()
    upload = SimpleUploadedFile("mixed.csv", data, content_type="text/csv")
    csv_file = read_csv(upload, max_bytes=LIMIT)
    assert list(csv_file.rows()) == read_sample("portal-users-mixed.csv")[1]


# --- Size and streaming ---

_STREAM_SCRIPT = r"""
import io, json, resource, sys, time
from imports.csv_reader import read_csv


def peak_rss_mb():
    # Linux carries the parent's high-water mark over into ru_maxrss across exec, so a child
    # of a big pytest process would report the parent's size; VmHWM is this process's own.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024 if sys.platform == "darwin" else 1024)


ROWS, BLOCK_ROWS = int(sys.argv[1]), 10_000
NOTE = "café crème: a note to pad the row".encode()
BLOCK = b"".join(b"003%016d,Partner User,%s\r\n" % (i, NOTE) for i in range(BLOCK_ROWS))


class Generated(io.RawIOBase):
    # Rows are made as they are read: the file never exists whole, in memory or on disk.
    def __init__(self):
        self.blocks_left = ROWS // BLOCK_ROWS
        self.pending = memoryview(b"ContactId,Role,Notes\r\n")
        self.produced = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        if not self.pending and self.blocks_left:
            self.pending, self.blocks_left = memoryview(BLOCK), self.blocks_left - 1
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        self.produced += size
        return size


source = Generated()
started = time.perf_counter()
csv_file = read_csv(source, max_bytes=300 * 1024 * 1024)
count, first, last = 0, None, None
for line, cells in csv_file.rows():
    count, first, last = count + 1, first or line, line
print(json.dumps({
    "rows": count, "first": first, "last": last, "cells": cells, "bytes": source.produced,
    "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(),
}))
"""


def test_a_million_rows_stream_in_bounded_memory():
    """A fresh process, so its peak memory is the reader's alone (Python itself takes ~12 MB).
    The file is over 60 MB: holding it, or its decoded text, would break the 50 MB bound."""
    result = subprocess.run(
        [sys.executable, "-c", _STREAM_SCRIPT, "1000000"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    run = json.loads(result.stdout)
    assert (run["rows"], run["first"], run["last"]) == (1_000_000, 2, 1_000_001)
    assert run["cells"][1:] == [
        "Partner User",
        "café crème: a note to pad the row",
    ]
    assert run["bytes"] > 60 * MB
    assert run["peak_rss_mb"] < 50, run


class Sized:
    """An upload that knows its size; reading it would be a bug."""

    size = 61 * MB

    def read(self, size=-1):
        raise AssertionError("a file over the limit must be refused before it is read")


def test_an_upload_over_the_limit_is_refused_from_its_size():
    with pytest.raises(CsvError) as raised:
        read_csv(Sized(), max_bytes=LIMIT)
    assert raised.value.message == (
        "The file is 61 MB; the limit is 50 MB. Split it into smaller files."
    )


def test_a_seekable_file_over_the_limit_is_refused_before_reading():
    data = b"ContactId,Role\n" + b"003iK2ZWeqhFWCEPyYn,Partner User\n" * 100
    with pytest.raises(CsvError, match=r"The file is 3.3 KB; the limit is 2 KB\. Split it"):
        read_bytes(data, max_bytes=2048)


def test_a_stream_over_the_limit_fails_while_reading():
    data = b"ContactId,Role\n" + b"003iK2ZWeqhFWCEPyYn,Partner User\n" * 10_000
    csv_file = read_csv(Trickle(data, 4096), max_bytes=SNIFF_BYTES + 100_000)
    rows = csv_file.rows()
    assert next(rows)[0] == 2
    with pytest.raises(CsvError, match="larger than the limit of 161.6 KB. Split it"):
        list(rows)


# --- Encodings ---


def _zoe_rows(count):
    return b"".join(b"003%016d,Partner User,Zo\xc3\xab\n" % i for i in range(count))


def test_invalid_utf8_after_the_first_chunk_names_the_line():
    rows_before = 3000  # about 130 KiB of valid UTF-8, so the sniffed chunk decides UTF-8
    data = b"ContactId,Role,Notes\n" + _zoe_rows(rows_before) + b"003x,Partner User,caf\xe9\n"
    bad_line = rows_before + 2
    for source in (io.BytesIO(data), Trickle(data, 1000)):
        csv_file = read_csv(source, max_bytes=LIMIT)
        assert csv_file.encoding == "utf-8"
        seen = []
        with pytest.raises(CsvError) as raised:
            seen.extend(csv_file.rows())
        assert raised.value.line == bad_line
        assert raised.value.message.startswith(f"Line {bad_line} is not valid UTF-8 (byte 0xE9)")
        assert "Windows-1252" in raised.value.message
        assert "Save As › CSV UTF-8" in raised.value.message
        assert all(cells[2] == "Zoë" for _, cells in seen)


def test_a_character_split_by_the_sniff_boundary_is_still_utf8():
    header = b"ContactId,Role,Notes\n"
    filler = b"003iK2ZWeqhFWCEPyYn,Partner User,"
    padding = SNIFF_BYTES - 1 - len(header) - len(filler) - len(b"Zo")  # "ë" straddles the end
    data = header + filler + b"x" * padding + b"Zo\xc3\xab\n" + _zoe_rows(10)
    assert data[SNIFF_BYTES - 1 : SNIFF_BYTES + 1] == b"\xc3\xab"
    csv_file, rows = read_bytes(data)
    assert csv_file.encoding == "utf-8"
    assert rows[0][1][2].endswith("xZoë")
    assert len(rows) == 11


def test_a_cp1252_byte_at_the_end_of_the_sniffed_chunk_is_not_taken_for_half_a_character():
    header = b"ContactId,Role,Notes\n003iK2ZWeqhFWCEPyYn,Partner User,"
    data = header + b"x" * (SNIFF_BYTES - 1 - len(header)) + b"\xe9t\xe9\n"
    csv_file, rows = read_bytes(data)
    assert csv_file.encoding == "cp1252"
    assert rows[0][1][2].endswith("xxété")


def test_cp1252_is_decided_on_the_first_chunk():
    data = "ContactId;Role;Notes\r\n003iK2ZWeqhFWCEPyYn;Partner User;Ångström – “quoted”\r\n"
    csv_file, rows = read_bytes(data.encode("cp1252"))
    assert (csv_file.encoding, csv_file.delimiter) == ("cp1252", ";")
    assert rows == [(2, ["003iK2ZWeqhFWCEPyYn", "Partner User", "Ångström – “quoted”"])]


def test_bytes_that_are_neither_utf8_nor_cp1252_are_refused():
    data = b"ContactId,Role\n003iK2ZWeqhFWCEPyYn,Partner\x81User\n"
    with pytest.raises(CsvError) as raised:
        read_bytes(data)
    assert raised.value.message == (
        "The file is neither UTF-8 nor Windows-1252 text: byte 0x81 on line 2 cannot be read. "
        "In Excel choose File › Save As › CSV UTF-8 and upload that file."
    )


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_is_read(codec):
    """Excel's "Unicode Text" export: UTF-16 with a BOM, tab-separated."""
    text = "ContactId\tRole\r\n003iK2ZWeqhFWCEPyYn\tPartner User\r\n0032et68tVkAKqiaJ42\tZoë\r\n"
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    csv_file, rows = read_bytes(bom + text.encode(codec))
    assert (csv_file.encoding, csv_file.delimiter) == ("utf-16", "\t")
    assert csv_file.header == ["ContactId", "Role"]
    assert rows == [
        (2, ["003iK2ZWeqhFWCEPyYn", "Partner User"]),
        (3, ["0032et68tVkAKqiaJ42", "Zoë"]),
    ]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old Excel workbook (.xls)"),
        (b"PK\x03\x04" + b"\x00" * 100, "ZIP archive"),
        (b"ContactId,Role\n\x00\x01\x02garbage\n", "binary data (NUL bytes)"),
        (b"C\x00o\x00n\x00t\x00a\x00c\x00t\x00", "binary data (NUL bytes)"),  # UTF-16, no BOM
    ],
)
def test_files_that_are_not_csv_are_refused(data, words):
    with pytest.raises(CsvError) as raised:
        read_bytes(data)
    assert words in raised.value.message
    assert "Save As › CSV UTF-8" in raised.value.message


def test_a_nul_after_the_first_chunk_names_the_line():
    data = b"ContactId,Role\n" + b"003iK2ZWeqhFWCEPyYn,Partner User\n" * 3000 + b"x\x00y,z\n"
    csv_file = read_csv(io.BytesIO(data), max_bytes=LIMIT)
    with pytest.raises(CsvError, match="^Line 3002 contains a NUL character"):
        list(csv_file.rows())


@pytest.mark.parametrize("data", [b"", b"\n\r\n  \n", codecs.BOM_UTF8, b",,\n , ,\n"])
def test_files_with_nothing_in_them_are_empty(data):
    with pytest.raises(CsvError, match=r"^The file is empty\. Export the sheet as CSV"):
        read_bytes(data)


# --- Separators, line ends, quoting ---


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_separator_is_detected_from_the_header(delimiter):
    text = 'ContactId{0}Role{0}Notes\n003iK2ZWeqhFWCEPyYn{0}Partner User{0}"a, b; c| d"\n'
    csv_file, rows = read_bytes(text.format(delimiter).encode())
    assert csv_file.delimiter == delimiter
    assert rows == [(2, ["003iK2ZWeqhFWCEPyYn", "Partner User", "a, b; c| d"])]


def test_separators_inside_quoted_header_cells_do_not_count():
    csv_file, _ = read_bytes(b'"Contact, Id, Salesforce";Role\n003iK2ZWeqhFWCEPyYn;Partner User\n')
    assert csv_file.delimiter == ";"
    assert csv_file.header == ["Contact, Id, Salesforce", "Role"]


def test_a_single_column_file_reads_and_fails_at_mapping():
    csv_file, rows = read_bytes(b"ContactId\n003iK2ZWeqhFWCEPyYn\n")
    assert (csv_file.delimiter, csv_file.header, rows) == (
        ",",
        ["ContactId"],
        [(2, ["003iK2ZWeqhFWCEPyYn"])],
    )
    with pytest.raises(MappingError, match="No Role column"):
        map_columns(csv_file.header, PORTAL_USER_FIELDS)


CRLF_QUOTED = (
    b"ContactId,Role,Notes\r\n"
    b'003iK2ZWeqhFWCEPyYn,Partner User,"first line\r\nsecond line"\r\n'
    b"\r\n"
    b'003CrUZoL8g5ubbbPIa,Customer User,"""quoted"", and\r\n\r\nthree lines"\r\n'
    b"0038FJowoRoWD8s7bA1,Partner User,plain\r\n"
)


@pytest.mark.parametrize("step", [None, 1, 2, 7])
def test_crlf_with_quoted_newlines_keeps_physical_line_numbers(step):
    source = io.BytesIO(CRLF_QUOTED) if step is None else Trickle(CRLF_QUOTED, step)
    csv_file = read_csv(source, max_bytes=LIMIT)
    assert list(csv_file.rows()) == [
        (2, ["003iK2ZWeqhFWCEPyYn", "Partner User", "first line\r\nsecond line"]),
        (5, ["003CrUZoL8g5ubbbPIa", "Customer User", '"quoted", and\r\n\r\nthree lines']),
        (8, ["0038FJowoRoWD8s7bA1", "Partner User", "plain"]),
    ]


def test_old_mac_line_ends_are_lines_too():
    _, rows = read_bytes(b"ContactId,Role\r003iK2ZWeqhFWCEPyYn,Partner User\r\r003x,Role\r")
    assert rows == [(2, ["003iK2ZWeqhFWCEPyYn", "Partner User"]), (4, ["003x", "Role"])]


def test_blank_rows_anywhere_are_skipped_but_keep_line_numbers():
    data = b"\n \n,,\nContactId,Role\n\n003a,R1\n , \n\t\n003b,R2\n\n\n"
    csv_file, rows = read_bytes(data)
    assert (csv_file.header_line, csv_file.header) == (4, ["ContactId", "Role"])
    assert rows == [(6, ["003a", "R1"]), (9, ["003b", "R2"])]


def test_cells_and_headers_are_trimmed_short_rows_padded_long_rows_kept():
    data = b'  ContactId , Role ,,\n003a\n 003b , R ,, ,\n003c,R,,extra,\n  "003d"  , " R " \n'
    csv_file, rows = read_bytes(data)
    assert csv_file.header == ["ContactId", "Role"]  # empty trailing header cells dropped
    assert rows == [
        (2, ["003a", ""]),
        (3, ["003b", "R"]),
        (4, ["003c", "R", "", "extra"]),  # a non-empty extra cell is for validation to judge
        (5, ["003d", "R"]),
    ]


def test_an_unclosed_quote_is_an_error_not_a_swallowed_file():
    data = b'ContactId,Role,Notes\n003a,R,ok\n003b,R,"never closed\n003c,R,x\n003d,R,y\n'
    csv_file = read_csv(io.BytesIO(data), max_bytes=LIMIT)
    with pytest.raises(CsvError) as raised:
        list(csv_file.rows())
    assert raised.value.line == 3
    assert raised.value.message.startswith("Line 3: a quoted cell is never closed")
    assert "Add the missing closing quote" in raised.value.message


def test_a_last_line_ending_in_a_quoted_newline_is_fine():
    _, rows = read_bytes(b'ContactId,Role,Notes\n003a,R,"ends with a newline\n"')
    assert rows == [(2, ["003a", "R", "ends with a newline"])]


def test_a_giant_cell_is_refused_with_its_line():
    data = b'ContactId,Role,Notes\n003a,R,x\n003b,R,"' + b"x" * 200_000 + b'"\n'
    csv_file = read_csv(io.BytesIO(data), max_bytes=LIMIT)
    with pytest.raises(CsvError, match=r"^Line 3 has a cell longer than 131,072 characters\."):
        list(csv_file.rows())


def test_duplicate_headers_are_compared_ignoring_case():
    with pytest.raises(CsvError) as raised:
        read_bytes(b"Role,ContactId,role,ROLE\na,b,c,d\n")
    assert raised.value.message == (
        "The column 'Role' appears 3 times (columns A, C and D). Remove or rename all but one."
    )


def test_rows_can_be_read_again_from_a_seekable_file_but_not_from_a_stream():
    data = sample_path("portal-users-mixed.csv").read_bytes()
    csv_file = read_csv(io.BytesIO(data), max_bytes=LIMIT)
    assert list(csv_file.rows()) == list(csv_file.rows())
    stream = read_csv(Trickle(data, 50), max_bytes=LIMIT)
    assert len(list(stream.rows())) == 15
    with pytest.raises(RuntimeError, match="only once"):
        list(stream.rows())


def test_a_text_mode_file_is_a_programming_error():
    with pytest.raises(TypeError, match="binary mode"):
        read_csv(io.StringIO("ContactId,Role\n"), max_bytes=LIMIT)


@pytest.mark.parametrize(
    ("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")]
)
def test_column_letters_match_spreadsheets(index, letters):
    assert column_letter(index) == letters


# --- Column mapping ---


@pytest.mark.parametrize(
    "header",
    [
        ["ContactId", "Role"],
        ["contact id", " ROLE "],
        ["Contact_ID", "role"],
        ["Email", "CONTACT-ID", "Notes", "Role"],
        ["contact_id", "Expect", "rOlE"],
    ],
)
def test_auto_map_ignores_case_spaces_underscores_and_dashes(header):
    mapping = auto_map([cell.strip() for cell in header], PORTAL_USER_FIELDS)
    assert mapping == {
        "contact_id": next(i for i, c in enumerate(header) if "contact" in c.lower()),
        "role": next(i for i, c in enumerate(header) if "role" in c.lower()),
    }
    assert validate_mapping(mapping, header, PORTAL_USER_FIELDS) == []


def test_missing_columns_are_reported_one_message_each():
    header = ["Name", "Email"]
    mapping = auto_map(header, PORTAL_USER_FIELDS)
    assert mapping == {"contact_id": None, "role": None}
    assert validate_mapping(mapping, header, PORTAL_USER_FIELDS) == [
        "No ContactId column. Add a column named ContactId, or pick which column holds the "
        "contact id.",
        "No Role column. Add a column named Role, or pick which column holds the role.",
    ]


def test_two_columns_that_both_look_like_a_field_are_not_guessed():
    header = ["Contact Id", "ContactId", "Role"]
    mapping = auto_map(header, PORTAL_USER_FIELDS)
    assert mapping == {"contact_id": None, "role": 2}
    assert validate_mapping(mapping, header, PORTAL_USER_FIELDS) == [
        "Columns A ('Contact Id') and B ('ContactId') both look like the ContactId column. "
        "Remove or rename all but one, or pick which column holds the contact id."
    ]
    assert map_columns(header, PORTAL_USER_FIELDS, {"contact_id": "ContactId"})["contact_id"] == 1


def test_a_column_mapped_twice_is_an_error():
    header = ["ContactId", "Role"]
    errors = validate_mapping({"contact_id": 0, "role": 0}, header, PORTAL_USER_FIELDS)
    assert errors == [
        "Column A ('ContactId') is picked for both ContactId and Role. "
        "Pick a different column for one of them."
    ]


def test_manual_mapping_by_header_name_or_index():
    header = ["Id", "Portal role", "Email"]
    assert auto_map(header, PORTAL_USER_FIELDS) == {"contact_id": None, "role": None}
    by_name = manual_map({"contact_id": "Id", "role": " portal ROLE "}, header, PORTAL_USER_FIELDS)
    by_index = manual_map({"contact_id": 0, "role": 1}, header, PORTAL_USER_FIELDS)
    assert by_name == by_index == {"contact_id": 0, "role": 1}
    partly = map_columns(["ContactId", "Job"], PORTAL_USER_FIELDS, {"role": "Job"})
    assert partly == {"contact_id": 0, "role": 1}  # fields not chosen keep their auto column


def test_manual_mapping_refuses_what_does_not_exist_and_can_unset():
    header = ["ContactId", "Role"]
    with pytest.raises(MappingError) as raised:
        manual_map({"role": "Job", "contact_id": 5, "email": 0}, header, PORTAL_USER_FIELDS)
    assert raised.value.messages == [
        "There is no column named 'Job'. Pick one of: ContactId, Role.",
        "There is no column F in the file (it has 2 columns). Pick one of: ContactId, Role.",
        "There is no field 'email' to map.",
    ]
    unset = manual_map({"role": None}, header, PORTAL_USER_FIELDS)
    assert validate_mapping(unset, header, PORTAL_USER_FIELDS) == [
        "No Role column. Add a column named Role, or pick which column holds the role."
    ]


def test_optional_fields_and_aliases_for_other_targets():
    fields = (
        Field("contact_id", "ContactId", noun="contact id"),
        Field("email", "Email", required=False, aliases=("E-mail address",)),
    )
    assert map_columns(["contact id"], fields) == {"contact_id": 0, "email": None}
    assert auto_map(["ContactId", "e-mail Address"], fields) == {"contact_id": 0, "email": 1}


def test_row_values_give_each_field_its_cell():
    mapping = {"contact_id": 2, "role": 0}
    assert row_values(mapping, ["Partner User", "x", "003a"]) == {
        "contact_id": "003a",
        "role": "Partner User",
    }
    assert row_values({"contact_id": 5, "role": None}, ["a"]) == {"contact_id": "", "role": ""}
