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
