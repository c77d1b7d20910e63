"""Read stage of the CSV import: turn an uploaded file into a header and a stream of rows.

Files come from Excel, Google Sheets and hand edits, so the reader accepts what those write
(UTF-8 with or without a byte-order mark, Windows-1252, UTF-16 with a byte-order mark; `,` `;`
tab or `|` separators; CRLF or LF line ends) and refuses everything else with a `CsvError`
whose message says what is wrong and what to do about it.

Memory must not grow with the file (imports of a million rows), so nothing here reads the whole
file: the encoding and separator are decided from the first 64 KiB, and rows are decoded, split
and parsed one chunk at a time. The price is that a few problems (a non-UTF-8 byte far into the
file, a file that grows past the size limit while being read) only show up while `rows()` is
being iterated; they are raised there as `CsvError` too, naming the line.
"""

import codecs
import csv
import io
import itertools
import math
from collections.abc import Iterator, Sequence

from helpers.sizes import size_text

SNIFF_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
# A physical line longer than this is not a spreadsheet export; refusing it keeps memory bounded
# (csv's own field_size_limit bounds a single cell).
MAX_LINE_CHARS = 1024 * 1024
# A record (a row, which quoted cells may spread over many short lines) longer than this is
# refused too: otherwise a row of endless quoted multi-line cells, each under the cell limit,
# would be parsed into one ever-growing list before any check could see it.
MAX_RECORD_CHARS = 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")  # ties go to the earlier one
DEFAULT_EXAMPLE_HEADER = ("ContactId", "Role")

ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with byte-order mark)",
    "cp1252": "Windows-1252",
    "utf-16": "UTF-16",
}

SAVE_AS_CSV = "In Excel choose File › Save As › CSV UTF-8 and upload that file."

# Fed to the csv parser after the last real line. If the parser is still inside a quoted cell
# when it gets here, the sentinel lands inside that cell: that is how an unclosed quote is told
# apart from a cell that legitimately ends in a newline. NUL never occurs in accepted text.
_END = "\x00end-of-file\x00"


class CsvError(Exception):
    """A file that cannot be imported. `message` is meant for the person who uploaded it."""

    def __init__(self, message, *, line=None):
        super().__init__(message)
        self.message = message
        self.line = line


def column_letter(index):
    """Spreadsheet column name for a 0-based index: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def read_csv(
    source,
    *,
    max_bytes,
    example_header: Sequence[str] = DEFAULT_EXAMPLE_HEADER,
    max_columns=None,
) -> "CsvFile":
    """Open `source` (a binary file-like object, e.g. a Django UploadedFile) as a CSV file.

    Reads the header and the first row before returning, so an empty, header-only or non-CSV
    file fails here. `example_header` only appears in messages that tell people what to export.
    `max_columns` refuses a header with more columns than that (every later step, the mapping
    page above all, grows with the header's width).
    """
    start = _tell(source)
    size = _declared_size(source, start)
    if size is not None and size > max_bytes:
        raise CsvError(too_large_message(max_bytes, size))
    first = _read_up_to(source, SNIFF_BYTES)
    at_eof = len(first) < SNIFF_BYTES
    if not at_eof:
        # Finish a character cut by the boundary, so the sniff judges whole characters only.
        first += _read_up_to(source, _bytes_to_finish_utf8_character(first))
    _refuse_non_csv(first)
    encoding, text = _detect_encoding(first, at_eof)
    csv_file = CsvFile(
        source,
        encoding=encoding,
        delimiter=_detect_delimiter(text),
        max_bytes=max_bytes,
        start=start,
    )
    csv_file._open(first, example_header, max_columns)
    return csv_file


class CsvFile:
    """A CSV file being read. `header` holds the header cells as written (whitespace and any
    byte-order mark stripped); `rows()` streams the data rows."""

    def __init__(self, source, *, encoding, delimiter, max_bytes, start):
        self.encoding = encoding
        self.delimiter = delimiter
        self.header: list[str] = []
        self.header_line = 0
        self._source = source
        self._max_bytes = max_bytes
        self._start = start
        self._pending = None  # (first row, record iterator) left over from read_csv

    @property
    def encoding_label(self):
        return ENCODING_LABELS.get(self.encoding, self.encoding)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Yield `(line_number, cells)` for each data row, in file order.

        `line_number` is the physical line (1-based, header included) where the row starts, so a
        failure file can cite it. Cells are whitespace-stripped; short rows are padded with ""
        to the header's width; cells beyond the header's width are dropped when empty and kept
        otherwise (validation decides). Rows whose cells are all empty are skipped.

        Each call starts again from the top of the file (so do not interleave two of them); a
        source that cannot seek can be read once.
        May raise `CsvError` part-way through (see the module docstring).
        """
        width = len(self.header)
        for line, cells in self._data_records():
            if len(cells) < width:
                cells.extend([""] * (width - len(cells)))
            else:
                while len(cells) > width and not cells[-1]:
                    cells.pop()
            yield line, cells

    def _data_records(self):
        if self._pending is not None:
            first_row, records = self._pending
            self._pending = None
            return itertools.chain([first_row], records)
        if self._start is None:
            raise RuntimeError("rows() can be read only once: the source cannot seek.")
        self._source.seek(self._start)
        records = self._records(_read_up_to(self._source, CHUNK_BYTES))
        next(records)  # the header, already known
        return records

    def _open(self, first_chunk, example_header, max_columns):
        records = self._records(first_chunk)
        header_record = next(records, None)
        if header_record is None:
            raise CsvError(_empty_message(example_header))
        self.header_line, header = header_record
        header[0] = header[0].lstrip("\ufeff").strip()
        while header and not header[-1]:
            header.pop()
        if max_columns is not None and len(header) > max_columns:
            raise CsvError(_too_many_columns_message(len(header), max_columns, example_header))
        self.header = header
        _refuse_duplicate_header(header)
        first_row = next(records, None)
        if first_row is None:
            raise CsvError(
                "The file has a header but no rows. Add the rows to import under the header "
                "and upload the file again."
            )
        self._pending = (first_row, records)

    def _records(self, first_chunk):
        """Non-blank records from the top of the file (header first), as (start line, cells)."""
        lines = _Lines(_chunks(first_chunk, self._source, self._max_bytes), self.encoding)
        reader = csv.reader(lines, delimiter=self.delimiter, skipinitialspace=True)
        previous_end = 0
        while True:
            start = previous_end + 1
            lines.begin_record(start)
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise CsvError(_csv_error_message(error, start), line=start) from error
            previous_end = reader.line_num
            if lines.at_end:
                if record == [_END]:
                    return
                raise CsvError(
                    f"Line {start}: a quoted cell is never closed, so the rest of the file "
                    'would be read as one cell. Add the missing closing quote (") and upload '
                    "the file again.",
                    line=start,
                )
            cells = [cell.strip() for cell in record]
            if any(cells):
                yield start, cells


class _Lines:
    """Decoded physical lines (line ends kept, as csv needs them), followed by the `_END`
    sentinel. Counts lines as it goes so decoding problems can name the line."""

    def __init__(self, chunks, encoding):
        self._chunks = chunks
        self._encoding = encoding
        self.count = 0
        self.at_end = False
        self._record_start = 1
        self._record_chars = 0

    def begin_record(self, line):
        """The csv parser asks for lines one at a time, so every line handed out after this
        belongs to the record starting on `line` until the next call."""
        self._record_start = line
        self._record_chars = 0

    def _handed_out(self, lines):
        for line in lines:
            self._record_chars += len(line)
            if self._record_chars > MAX_RECORD_CHARS:
                start = self._record_start
                raise CsvError(
                    f"The row starting on line {start} is longer than {MAX_RECORD_CHARS:,} "
                    "characters, which a spreadsheet export never is. This usually means a "
                    'quote (") is opened but never closed. Fix the quote, or check that this '
                    "is the right file, and upload it again.",
                    line=start,
                )
            yield line

    def __iter__(self):
        decoder = codecs.getincrementaldecoder(self._encoding)("strict")
        # An unfinished last line waits for the next chunk; so does a line ending in "\r",
        # which may be the first half of a "\r\n" split across chunks.
        carry = ""
        for chunk in self._chunks:
            lines = self._split(carry, self._decode(decoder, chunk, carry))
            carry = lines.pop() if lines and not lines[-1].endswith("\n") else ""
            if len(carry) > MAX_LINE_CHARS:
                line = self.count + len(lines) + 1
                raise CsvError(
                    f"Line {line} is longer than {MAX_LINE_CHARS:,} characters, which a "
                    "spreadsheet export never is. Check that this is the right file, or "
                    f"export it again. {SAVE_AS_CSV}",
                    line=line,
                )
            self.count += len(lines)
            yield from self._handed_out(lines)
        lines = self._split(carry, self._decode(decoder, b"", carry, final=True))
        self.count += len(lines)
        yield from self._handed_out(lines)
        self.at_end = True
        yield _END + "\n"

    def _split(self, carry, text):
        if "\x00" in text:
            line = self.count + _line_ends(carry + text[: text.index("\x00")]) + 1
            raise CsvError(
                f"Line {line} contains a NUL character, so this is not a plain CSV file. "
                f"{SAVE_AS_CSV}",
                line=line,
            )
        return io.StringIO(carry + text, newline="").readlines()

    def _decode(self, decoder, chunk, carry, final=False):
        try:
            return decoder.decode(chunk, final)
        except UnicodeDecodeError as error:
            line = self.count + _line_ends(carry + _decodable_prefix(error)) + 1
            raise CsvError(_decode_error_message(error, self._encoding, line), line=line) from None


def _chunks(first, source, max_bytes):
    total = 0
    chunk = first
    while chunk:
        total += len(chunk)
        if total > max_bytes:
            raise CsvError(too_large_message(max_bytes))
        yield chunk
        chunk = source.read(CHUNK_BYTES)
        if isinstance(chunk, str):
            raise TypeError("read_csv() needs a file opened in binary mode.")


def _read_up_to(source, size):
    """Read `size` bytes unless the file ends first (raw streams may return less per call)."""
    parts = []
    remaining = size
    while remaining:
        part = source.read(remaining)
        if isinstance(part, str):
            raise TypeError("read_csv() needs a file opened in binary mode.")
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _tell(source):
    try:
        return source.tell() if source.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _declared_size(source, start):
    """Size of what is left to read, when known without reading it."""
    size = getattr(source, "size", None)
    if isinstance(size, int):
        return size - (start or 0)
    if start is None:
        return None
    end = source.seek(0, io.SEEK_END)
    source.seek(start)
    return end - start


def _refuse_non_csv(first):
    if first.startswith(b"PK\x03\x04"):
        if b"xl/" in first or b"[Content_Types].xml" in first:
            raise CsvError(
                f"This looks like an Excel workbook (.xlsx), not a CSV file. {SAVE_AS_CSV}"
            )
        raise CsvError(
            "This is a ZIP archive (or a spreadsheet saved in a zipped format), not a CSV file. "
            f"Open it in its spreadsheet program and save it as CSV. {SAVE_AS_CSV}"
        )
    if first.startswith(b"\xd0\xcf\x11\xe0"):
        raise CsvError(
            f"This looks like an old Excel workbook (.xls), not a CSV file. {SAVE_AS_CSV}"
        )
    if b"\x00" in first and not first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvError(
            f"This file contains binary data (NUL bytes), so it is not a CSV file. {SAVE_AS_CSV}"
        )


def _detect_encoding(first, at_eof):
    """Pick the codec from the first chunk and return it with the chunk's decoded text.

    The UTF-8 check uses an incremental decoder so a character cut in half by the chunk
    boundary is not mistaken for an invalid byte.
    """
    if first.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        try:
            return "utf-8", codecs.getincrementaldecoder("utf-8")().decode(first, at_eof)
        except UnicodeDecodeError:
            # Bytes that are not UTF-8 are almost always Excel on Windows' "CSV" (cp1252).
            encoding = "cp1252"
    try:
        return encoding, codecs.getincrementaldecoder(encoding)().decode(first, at_eof)
    except UnicodeDecodeError as error:
        line = _line_ends(_decodable_prefix(error)) + 1
        raise CsvError(_decode_error_message(error, encoding, line), line=line) from None


def _bytes_to_finish_utf8_character(data):
    for back in range(1, min(4, len(data) + 1)):
        byte = data[-back]
        if byte < 0x80:
            return 0
        if byte >= 0xC0:  # the lead byte says how long the character is
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return max(length - back, 0)
    return 0


def _detect_delimiter(text):
    """The candidate that splits the header line into the most cells, outside quotes."""
    lines = io.StringIO(text, newline="").readlines()
    offset = 0
    for line in lines:
        if line.strip(' \t\r\n"' + "".join(DELIMITERS)):
            break
        offset += len(line)
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in text[offset:]:
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "\r\n":
            break
        elif char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=counts.__getitem__)
    return best if counts[best] else ","


def _refuse_duplicate_header(header):
    seen = {}
    for index, name in enumerate(header):
        if name:
            seen.setdefault(name.casefold(), []).append(index)
    for indexes in seen.values():
        if len(indexes) > 1:
            letters = [column_letter(index) for index in indexes]
            columns = ", ".join(letters[:-1]) + " and " + letters[-1]
            name = header[indexes[0]]
            if len(indexes) == 2:
                raise CsvError(
                    f"The column '{name}' appears twice (columns {columns}). Remove or rename one."
                )
            raise CsvError(
                f"The column '{name}' appears {len(indexes)} times (columns {columns}). "
                "Remove or rename all but one."
            )


def _line_ends(text):
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _decodable_prefix(error):
    """The text before the byte that failed to decode (only its line ends matter)."""
    try:
        return error.object[: error.start].decode(error.encoding, "ignore")
    except LookupError:
        return error.object[: error.start].decode("latin-1")


def _decode_error_message(error, encoding, line):
    bad = error.object[error.start : error.start + 1]
    byte = f"byte 0x{bad.hex().upper()}" if bad else "a character cut off at the end"
    if encoding.startswith("utf-8"):
        return (
            f"Line {line} is not valid UTF-8 ({byte}), although the start of the file "
            "is. The file is probably saved partly in another encoding such as Windows-1252. "
            f"{SAVE_AS_CSV}"
        )
    if encoding == "cp1252":
        return (
            f"The file is neither UTF-8 nor Windows-1252 text: {byte} on line {line} "
            f"cannot be read. {SAVE_AS_CSV}"
        )
    label = ENCODING_LABELS.get(encoding, encoding)
    return f"Line {line} is not valid {label} text ({error.reason}). {SAVE_AS_CSV}"


def _csv_error_message(error, line):
    if "field limit" in str(error):
        return (
            f"Line {line} has a cell longer than {csv.field_size_limit():,} characters. This "
            'usually means a quote (") is opened but never closed. Fix the quote and upload '
            "the file again."
        )
    return f"Line {line} cannot be read as CSV ({error}). {SAVE_AS_CSV}"


def _empty_message(example_header):
    return (
        "The file is empty. Export the sheet as CSV with a header row "
        f"({', '.join(example_header)}) and upload it again."
    )


def too_large_message(max_bytes, size=None):
    """What to tell someone whose file is over the limit (the upload refuses it with this too,
    before it is read)."""
    limit = size_text(max_bytes, math.floor)
    if size is None:
        return f"The file is larger than the limit of {limit}. Split it into smaller files."
    return (
        f"The file is {size_text(size, math.ceil)}; the limit is {limit}. "
        "Split it into smaller files."
    )


def _too_many_columns_message(count, max_columns, example_header):
    return (
        f"The header row has {count:,} columns; the limit is {max_columns:,}. Delete the "
        f"columns the import does not read (it reads {', '.join(example_header)}) and upload "
        "the file again."
    )
