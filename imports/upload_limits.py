"""The size limit of an uploaded import file, applied while the request body streams in.

Django's default upload handlers write any file over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) to a
temporary file as it arrives, so checking the size in the view meant a 300 MB upload was on
disk before it was refused. `FileSizeLimit` goes first in the request's upload handlers: a body
declared larger than the limit never reaches the next handler at all, and a file that turns out
larger while it streams is dropped at the chunk that crosses the limit. The rest of the file is
read and thrown away (never stored) so that the browser, still sending, gets the page that
says why instead of a reset connection.
"""

from django.core.files.uploadhandler import FileUploadHandler, SkipFile

from imports.csv_reader import too_large_message

# The form's other fields and the multipart headers around the file: a few hundred bytes in
# practice; a body larger than the limit plus this cannot hold a file within the limit.
FORM_ALLOWANCE_BYTES = 64 * 1024


class FileSizeLimit(FileUploadHandler):
    """Refuses any uploaded file over `max_bytes`; `refused` says whether it did, and
    `message` what to tell the person. The form's other fields are still read (the CSRF
    token among them), so the view can answer with the form and its error."""

    def __init__(self, request=None, *, max_bytes):
        super().__init__(request)
        self.max_bytes = max_bytes
        self.refused = False
        self._body_too_large = False

    @property
    def message(self):
        return too_large_message(self.max_bytes)

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self._body_too_large = content_length > self.max_bytes + FORM_ALLOWANCE_BYTES
        return None  # the multipart parser still reads the form

    def new_file(self, field_name, file_name, content_type, content_length, *args, **kwargs):
        # Raised before the handlers after this one are told about the file, so the temporary
        # file handler does not even create its (empty) file.
        if self._body_too_large or (content_length or 0) > self.max_bytes:
            self._refuse()

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.max_bytes:
            self._refuse()
        return raw_data  # within the limit: the next handler stores it

    def file_complete(self, file_size):
        return None  # the next handler (memory or temporary file) makes the uploaded file

    def _refuse(self):
        self.refused = True
        raise SkipFile
