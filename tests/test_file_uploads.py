"""A file sent where none is expected is never stored: not even the CSRF middleware's reading
of the body may write it to a temporary file."""

from unittest import mock

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler


def test_a_file_posted_to_a_page_that_takes_none_is_never_stored(client, technician):
    big = SimpleUploadedFile("big.bin", b"x" * (3 * 1024 * 1024))
    with (
        mock.patch.object(TemporaryFileUploadHandler, "new_file") as to_disk,
        mock.patch.object(MemoryFileUploadHandler, "new_file") as to_memory,
    ):
        response = client.post("/sign-in/", {"username": technician.email, "file": big})
    assert response.status_code == 200
    to_disk.assert_not_called()
    to_memory.assert_not_called()


def test_a_signed_in_post_with_a_file_stores_nothing_either(admin_client, account):
    big = SimpleUploadedFile("big.bin", b"x" * (3 * 1024 * 1024))
    with mock.patch.object(TemporaryFileUploadHandler, "new_file") as to_disk:
        admin_client.post(f"/accounts/{account.slug}/roles/", {"name": "X", "file": big})
    to_disk.assert_not_called()
