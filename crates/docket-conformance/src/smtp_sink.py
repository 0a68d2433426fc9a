"""A real SMTP server on loopback for docket-notify's email tests.

Usage: python3 smtp_sink.py OUTDIR

Listens on 127.0.0.1 on a free port and prints "LISTENING <port>" once it
accepts connections. Every accepted message is stored in OUTDIR as
<n>.eml (the raw bytes) and <n>.json (envelope plus decoded headers and
body). Recipients whose local part is "reject-permanent" are refused with
550, "reject-transient" with 451. Exits when its stdin is closed, so it
never outlives the test that started it.

Needs aiosmtpd: pip install aiosmtpd
"""

import asyncio
import email
import email.policy
import json
import os
import sys

try:
    from aiosmtpd.smtp import SMTP
except ImportError:
    print(
        "smtp_sink.py: the Python package aiosmtpd is missing; "
        "install it with `pip install aiosmtpd`",
        file=sys.stderr,
    )
    sys.exit(3)


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "reject-permanent":
            return "550 5.1.1 mailbox unavailable"
        if local == "reject-transient":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.outdir, str(self.count))
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "date": str(msg["date"]),
            "message_id": str(msg["message-id"]),
            "mime_version": msg["mime-version"] and str(msg["mime-version"]),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "body": msg.get_content(),
        }
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        # Write the JSON last and atomically: its presence means "complete".
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(base + ".json.tmp", base + ".json")
        return "250 Message accepted for delivery"


async def main(outdir):
    loop = asyncio.get_running_loop()
    sink = Sink(outdir)
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="docket-test-sink"), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {port}", flush=True)
    # Serve until the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(sys.argv[1]))
