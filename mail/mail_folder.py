"""An email backend for the embedded demo: each message becomes an .eml file in MAIL_FOLDER,
listed by the console's "Sent mail" page while DEBUG is on."""

import email
import email.policy
import uuid
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend


class MailFolderBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        folder = Path(settings.MAIL_FOLDER)
        folder.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            name = f"{datetime.now():%Y%m%d-%H%M%S-%f}-{uuid.uuid4().hex[:6]}.eml"
            (folder / name).write_bytes(message.message().as_bytes())
        return len(email_messages)


def read_folder(limit=100):
    """The newest `limit` messages first, each a dict (file name, to, subject, date as an aware
    datetime, text and html bodies), and how many the folder holds."""
    folder = Path(settings.MAIL_FOLDER)
    files = sorted(folder.glob("*.eml"), reverse=True) if folder.exists() else []
    messages = []
    for path in files[:limit]:
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = parsed.get_body(("plain",))
        html = parsed.get_body(("html",))
        messages.append(
            {
                "name": path.stem,
                "to": parsed["To"],
                "subject": parsed["Subject"],
                "date": parsed["Date"].datetime if parsed["Date"] else None,
                "text": text.get_content() if text else "",
                "html": html.get_content() if html else "",
            }
        )
    return messages, len(files)
