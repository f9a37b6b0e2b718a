"""Normalized match keys of a lead: the same customer typed in different ways gives the same
key. Pure functions, used by crm.lead's computed keys and by the bulk fill of the keys."""

import re
import unicodedata

from odoo.addons.iap.tools.iap_tools import _MAIL_DOMAIN_BLACKLIST

try:
    import phonenumbers
except ImportError:  # phone_validation makes it optional; keys fall back to digits
    phonenumbers = None

# Legal forms dropped from company names, whole words only.
LEGAL_FORMS = (
    # Vietnamese
    "cong ty trach nhiem huu han",
    "cong ty co phan",
    "cong ty tnhh",
    "cong ty cp",
    "cong ty",
    "tnhh",
    "co phan",
    "jsc",
    # Persian
    "سهامی خاص",
    "سهامی عام",
    "شرکت",
    "موسسه",
    # Arabic
    "ش م م",
    "ذ م م",
    "شركة",
    "مؤسسة",
    # Romanian
    "srl",
    "sa",
    "pfa",
    "ii",
    "sca",
    "snc",
    # English and international
    "co ltd",
    "incorporated",
    "corporation",
    "company",
    "limited",
    "inc",
    "llc",
    "ltd",
    "corp",
    "co",
    "plc",
    "llp",
    "lp",
    "gmbh",
    "ag",
    "bv",
    "nv",
    "sarl",
    "sas",
)
# Letters written differently in Arabic and Persian text for the same word.
_ARABIC_LETTERS = str.maketrans(
    {
        "ي": "ی",
        "ى": "ی",
        "ك": "ک",
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ة": "ه",
        "ؤ": "و",
        "ئ": "ی",
        "ـ": None,  # tatweel
        "đ": "d",
        "Đ": "d",
    }
)
_PUNCTUATION_RE = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACES_RE = re.compile(r"\s+")


def plain_text(text):
    """Casefolded, without accents, diacritics, punctuation or repeated spaces:
    'Dunărea S.R.L.' -> 'dunarea srl'."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKD", text.translate(_ARABIC_LETTERS).casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    # Dots and apostrophes join ('S.R.L.' -> 'srl'), other punctuation separates words.
    text = text.replace(".", "").replace("'", "").replace("’", "")
    return _SPACES_RE.sub(" ", _PUNCTUATION_RE.sub(" ", text)).strip()


def _legal_form_pattern():
    # Written as plain_text() writes names, longest first so that 'co ltd' wins over 'co'.
    forms = sorted({plain_text(form) for form in LEGAL_FORMS}, key=len, reverse=True)
    return re.compile(r"(?:^|\s)(?:" + "|".join(map(re.escape, forms)) + r")(?=\s|$)")


_LEGAL_FORM_RE = _legal_form_pattern()


def company_key(name):
    """A company's name without case, accents, punctuation or legal form:
    'ACME 12, Inc', 'acme 12 Inc.' and 'Acme 12' -> 'acme 12'."""
    text = plain_text(name)
    stripped = _SPACES_RE.sub(" ", _LEGAL_FORM_RE.sub(" ", text)).strip()
    # A name that is only a legal form ('SA') keeps it rather than becoming empty.
    return stripped or text or False


def person_key(name):
    """A contact's name without case, accents or punctuation."""
    return plain_text(name) or False


def email_key(email):
    """The address a user means: ' John.Smith+crm@Example.COM ' -> 'john.smith@example.com'."""
    if not email:
        return False
    address = email.strip().casefold()
    if "<" in address and ">" in address:
        address = address[address.rfind("<") + 1 : address.rfind(">")]
    address = "".join(address.split())
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return False
    local = local.split("+", 1)[0]
    return f"{local}@{domain}" if local else False


def domain_key(email, website):
    """The customer company's internet domain: the website's host, else the email's domain,
    never a public mail provider ('gmail.com') shared by unrelated people."""
    host = False
    if website:
        host = website.strip().casefold()
        host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", host).split("/", 1)[0].split(":", 1)[0]
        host = host.removeprefix("www.")
    if not host:
        address = email_key(email)
        host = address.rpartition("@")[2] if address else False
    if not host or "." not in host or host in _MAIL_DOMAIN_BLACKLIST:
        return False
    return host


def phone_key(number, country_codes):
    """The number in E.164 whatever way it was typed, read with the first country of
    `country_codes` (the lead's, its company's, the user's; or a function giving them, read
    only as far as needed) under which it is a possible
    number: '+1 (202) 555-0123', '202.555.0123' (US) and '001 202 555 0123' ->
    '+12025550123'. Digits only when no country makes sense of it."""
    if not number:
        return False
    digits = "".join(c for c in number if c.isdigit())
    if len(digits) < 6:
        return False
    text = number.strip()
    if text.startswith("00"):
        # The international call prefix of most countries, not of the US (011).
        text = "+" + text[2:]
    if phonenumbers is not None:
        # A number with its prefix is read the same in every country.
        regions = [None] if text.startswith("+") else _country_codes(country_codes)
        for region in regions:
            try:
                parsed = phonenumbers.parse(text, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_possible_number(parsed):
                return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return ("+" if text.startswith("+") else "") + digits


def _country_codes(country_codes):
    """Each country code once, in order, read only as far as the caller goes."""
    seen = set()
    for code in country_codes() if callable(country_codes) else country_codes:
        if code and code not in seen:
            seen.add(code)
            yield code


def lead_keys(email, phone, mobile, website, company_name, contact_name, country_codes):
    """All match keys of one lead, as stored on crm.lead."""
    return {
        "email_match_key": email_key(email),
        "phone_match_key": phone_key(phone or mobile, country_codes),
        "company_match_key": company_key(company_name),
        "contact_match_key": person_key(contact_name),
        "domain_match_key": domain_key(email, website),
    }


MATCH_KEY_FIELDS = (
    "email_match_key",
    "phone_match_key",
    "company_match_key",
    "contact_match_key",
    "domain_match_key",
)

# Why two leads look alike: bits combined by the similar-leads query and the cluster rules.
MATCH_EMAIL = 1
MATCH_PHONE = 2
MATCH_COMPANY = 4
MATCH_CONTACT = 8
MATCH_DOMAIN = 16
MATCH_FUZZY_COMPANY = 32
# Company names this alike (pg_trgm similarity) are shown as similar leads.
FUZZY_COMPANY_SIMILARITY = 0.6
