from .payment import Payment as Payment
from .payment_link import PaymentLink as PaymentLink
from .qrcode import Qrcode as Qrcode
