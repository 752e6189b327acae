"""``python -m devtools.razorpay_standin``: the stand-in as a server (see ``server``)."""

from .server import main

main()
