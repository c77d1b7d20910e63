"""Uploaded files are taken only where a view asks for them. Django's default upload handlers
store any file in a multipart body (in memory, or over 2.5 MB in a temporary file) as soon as
something reads request.POST, and CsrfViewMiddleware reads it on every POST: a 300 MB file sent
to the sign-in page would reach the disk before the request is refused. RefuseFiles goes first
in FILE_UPLOAD_HANDLERS and skips every file; a view that takes one (the import upload) puts its
own handlers in place of it."""

from django.core.files.uploadhandler import FileUploadHandler, SkipFile


class RefuseFiles(FileUploadHandler):
    def new_file(self, *args, **kwargs):
        raise SkipFile  # its data is read and dropped, never stored

    def receive_data_chunk(self, raw_data, start):
        return raw_data

    def file_complete(self, file_size):
        return None


def without_refusal(handlers):
    return [handler for handler in handlers if not isinstance(handler, RefuseFiles)]


# The size limit of an uploaded file, applied while the request body streams in.
#
# Django's default upload handlers write any file over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) to a
# temporary file as it arrives, so checking the size in the view meant a 300 MB upload was on
# disk before it was refused. `FileSizeLimit` goes first in the request's upload handlers: a body
# declared larger than the limit never reaches the next handler at all, and a file that turns out
# larger while it streams is dropped at the chunk that crosses the limit. The rest of the file is
# read and thrown away (never stored) so that the browser, still sending, gets the page that
# says why instead of a reset connection.

# The form's other fields and the multipart headers around the file: a few hundred bytes in
# practice; a body larger than the limit plus this cannot hold a file within the limit.
FORM_ALLOWANCE_BYTES = 64 * 1024


class FileSizeLimit(FileUploadHandler):
    """Refuses any uploaded file over `max_bytes`; `refused` says whether it did, and
    `message` what to tell the person. The form's other fields are still read (the CSRF
    token among them), so the view can answer with the form and its error."""

    def __init__(self, request=None, *, max_bytes, message):
        super().__init__(request)
        self.max_bytes = max_bytes
        self.message = message
        self.refused = False
        self._body_too_large = False

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
