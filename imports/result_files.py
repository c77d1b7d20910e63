"""The files an import hands back: the success file (one line per user created, with the new
user's id) and the failure file (each failed row as it was in the file, its line and one plain
reason). CSV in UTF-8 with a byte-order mark so Excel opens it with the right characters; every
cell goes through `neutralise_row` so a spreadsheet never runs a value as a formula.

Rows are appended a batch at a time to files on the job's storage (streamed, never held in
memory). The job records how many bytes of each file belong to committed batches, and
`ResultFiles.open` cuts a file back to that size, so a resumed run after a crash does not repeat
rows of a batch that was rolled back. This needs a storage with local paths (FileSystemStorage,
the default); a cloud storage would need the files uploaded when the run ends.
"""

import codecs
import csv
import io
import os

from helpers.spreadsheet_safety import neutralise_row

SUCCESS_HEADER = ("ContactId", "Role", "UserId")
FAILURE_HEADER = ("Line", "ContactId", "Role", "ReasonCode", "Reason")


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
        binary = open(path, "r+b" if committed and os.path.exists(path) else "w+b")  # noqa: SIM115
        if committed:
            binary.truncate(committed)
            binary.seek(committed)
        else:
            binary.truncate(0)
            binary.write(codecs.BOM_UTF8)
        self._binary = binary
        self._text = io.TextIOWrapper(binary, encoding="utf-8", newline="", write_through=True)
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
