"""The files an import hands back: the success file (one line per user created, with the new
user's id) and the failure file (each failed row as it was in the file, its line and one plain
reason). CSV in UTF-8 with a byte-order mark so Excel opens it with the right characters; every
cell goes through `neutralise_row` so a spreadsheet never runs a value as a formula.

Rows are appended a batch at a time to files on the job's storage (streamed, never held in
memory). The job records how many bytes of each file belong to committed batches, and a run
starts from a copy of exactly those bytes, so a resumed run after a crash does not repeat rows
of a batch that was rolled back. The copy is a new file that replaces the old one: a run given
up on (a stalled worker that wakes up after the job was resumed elsewhere) still has the old
file open, and whatever it writes before it learns that it lost the job goes to that unlinked
file, never into the rows of the run that took over. This needs a storage with local paths
(FileSystemStorage, the default); a cloud storage would need the files uploaded when the run
ends.
"""

import codecs
import csv
import io
import os
import secrets

from helpers.spreadsheet_safety import neutralise_row

SUCCESS_HEADER = ("ContactId", "Role", "UserId")
FAILURE_HEADER = ("Line", "ContactId", "Role", "ReasonCode", "Reason")
COPY_CHUNK = 1024 * 1024


class _ResultFile:
    def __init__(self, job, field_name, size_name, kind, header):
        self.job = job
        self.field_name = field_name
        self.size_name = size_name
        fieldfile = getattr(job, field_name)
        storage = fieldfile.storage
        if not fieldfile.name:
            fieldfile.name = storage.generate_filename(f"imports/results/job-{job.pk}-{kind}.csv")
        path = storage.path(fieldfile.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        committed = getattr(job, size_name)
        if not os.path.exists(path):
            committed = 0
        self._binary = _fresh_copy(path, committed)
        if not committed:
            self._binary.write(codecs.BOM_UTF8)
        self._text = io.TextIOWrapper(
            self._binary, encoding="utf-8", newline="", write_through=True
        )
        self._writer = csv.writer(self._text)
        if not committed:
            self.write(header)
            self.commit_point()

    def write(self, values):
        self._writer.writerow(neutralise_row(values))

    def commit_point(self):
        """Flush to disk and note the size on the job (saved with the batch's transaction)."""
        self._text.flush()
        self._binary.flush()
        os.fsync(self._binary.fileno())
        setattr(self.job, self.size_name, self._binary.tell())

    def close(self):
        self._text.close()


def _fresh_copy(path, size):
    """A new file at `path` holding the first `size` bytes of the old one, open for appending
    after them. Written under a temporary name and moved into place (the directory synced, so
    the move survives a crash like the rows written after it)."""
    temporary = f"{path}.{secrets.token_hex(4)}.part"
    binary = open(temporary, "w+b")  # noqa: SIM115 (closed by _ResultFile.close)
    try:
        if size:
            with open(path, "rb") as old:
                while size > 0:
                    chunk = old.read(min(size, COPY_CHUNK))
                    if not chunk:
                        break
                    binary.write(chunk)
                    size -= len(chunk)
        binary.flush()
        os.fsync(binary.fileno())
        os.replace(temporary, path)
    except BaseException:
        binary.close()
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    directory = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return binary


class ResultFiles:
    """Both result files of a job, open for appending. Use as a context manager. A target with
    other columns subclasses it and names its own headers."""

    success_header = SUCCESS_HEADER
    failure_header = FAILURE_HEADER

    def __init__(self, job):
        self.job = job
        self.success = None
        self.failure = None

    def __enter__(self):
        self.success = _ResultFile(
            self.job, "success_file", "success_file_bytes", "success", self.success_header
        )
        self.failure = _ResultFile(
            self.job, "failure_file", "failure_file_bytes", "failures", self.failure_header
        )
        return self

    def __exit__(self, *exc_info):
        for result_file in (self.success, self.failure):
            if result_file is not None:
                result_file.close()

    def created(self, contact_value, role_value, user_id):
        self.success.write([contact_value, role_value, user_id])

    def failed(self, line, contact_value, role_value, code, reason):
        self.failure.write([line, contact_value, role_value, code, reason])

    def commit_point(self):
        self.success.commit_point()
        self.failure.commit_point()
