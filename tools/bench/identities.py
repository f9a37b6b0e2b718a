"""People and companies of the benchmark's customers, and the messy ways salespeople type
them again. Deterministic: every choice comes from the `random.Random` passed in."""

import unicodedata

# locale: (country code, first names, last names, company stems, legal forms)
LOCALES = {
    "en": (
        "US",
        ["John", "Mary", "Robert", "Linda", "James", "Susan", "David", "Karen", "Paul", "Emma"],
        ["Smith", "Johnson", "Brown", "Miller", "Davis", "Wilson", "Moore", "Taylor", "Clark"],
        ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Zenith"],
        ["Inc.", "LLC", "Ltd", "Corp."],
    ),
    "ro": (
        "RO",
        ["Ioana", "Andrei", "Maria", "Mihai", "Elena", "Alexandru", "Ana", "Bogdan", "Cristina"],
        ["Popescu", "Ionescu", "Popa", "Stan", "Dumitru", "Stoica", "Gheorghe", "Matei"],
        ["Transilvania", "Carpați", "Dunărea", "Bucovina", "Moldova Trans", "Olt Construct"],
        ["SRL", "SA"],
    ),
    "vi": (
        "VN",
        ["An", "Bình", "Cường", "Dung", "Hạnh", "Hùng", "Lan", "Minh", "Phương", "Thảo"],
        ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Đặng"],
        ["Minh Phát", "Hòa Bình", "Sao Mai", "Thành Công", "Việt Tiến", "Đại Dương"],
        ["Công ty TNHH", "Công ty Cổ phần"],
    ),
    "ar": (
        "SA",
        ["محمد", "أحمد", "فاطمة", "علي", "مريم", "خالد", "نورة", "عمر", "سارة"],
        ["العتيبي", "القحطاني", "الشمري", "الحربي", "الدوسري", "الزهراني", "المطيري"],
        ["النور", "الأفق", "الرواد", "المستقبل", "الخليج", "البيان"],
        ["شركة", "مؤسسة"],
    ),
    "fa": (
        "IR",
        ["علی", "زهرا", "حسین", "مریم", "رضا", "فاطمه", "مهدی", "سارا", "امیر"],
        ["محمدی", "حسینی", "احمدی", "رضایی", "کریمی", "موسوی", "جعفری", "صادقی"],
        ["سپهر", "پارس", "آریا", "نوین", "البرز", "کاوه"],
        ["شرکت", "سهامی خاص"],
    ),
}
LOCALE_WEIGHTS = {"en": 40, "ro": 20, "vi": 20, "ar": 10, "fa": 10}
PREFIX_LEGAL_FORMS = {"Công ty TNHH", "Công ty Cổ phần", "شركة", "مؤسسة", "شرکت"}
PUBLIC_MAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com"]


def ascii_slug(text):
    """'Dunărea Trans' -> 'dunareatrans'; non-Latin scripts get a stable transcription."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    latin = "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()
    if latin:
        return latin
    return "co" + format(sum(ord(c) * (i + 1) for i, c in enumerate(text)) % 100000, "05d")


def company_name(stem, legal_form):
    if legal_form in PREFIX_LEGAL_FORMS:
        return f"{legal_form} {stem}"
    return f"{stem} {legal_form}"


def national_phone(country, rng):
    """A phone number as the customer first gives it, in international form."""
    if country == "US":
        return f"+1 202 555 {rng.randrange(100, 10000):04d}"
    if country == "RO":
        return f"+40 7{rng.randrange(20, 80)} {rng.randrange(100, 1000)} {rng.randrange(100, 1000)}"
    if country == "VN":
        return (
            f"+84 9{rng.randrange(0, 10)} {rng.randrange(100, 1000)} {rng.randrange(1000, 10000)}"
        )
    if country == "SA":
        return (
            f"+966 5{rng.randrange(0, 10)} {rng.randrange(100, 1000)} {rng.randrange(1000, 10000)}"
        )
    return f"+98 912 {rng.randrange(100, 1000)} {rng.randrange(1000, 10000)}"


def messy_phone(phone, country):
    """The same number typed differently: '+1 (202) 555-0123', '202.555.0123',
    '0040 721 234 567', '+40721234567'."""
    digits = "".join(c for c in phone if c.isdigit())
    prefix = {"US": "1", "RO": "40", "VN": "84", "SA": "966", "IR": "98"}[country]
    national = digits[len(prefix) :]
    variants = [
        "+" + digits,
        "00" + prefix + " " + " ".join([national[:3], national[3:6], national[6:]]),
    ]
    if country == "US":
        variants += [
            f"+1 ({national[:3]}) {national[3:6]}-{national[6:]}",
            f"{national[:3]}.{national[3:6]}.{national[6:]}",
        ]
    else:
        variants += ["0" + national]
    return variants


def messy_company(stem, legal_form):
    """The same company typed differently: 'Acme Inc.', 'ACME, Inc', 'Acme'."""
    plain = legal_form.rstrip(".")
    variants = [stem, stem.upper() + ", " + plain, company_name(stem.lower(), legal_form)]
    if legal_form == "SRL":
        variants.append(f"{stem.upper()} S.R.L.")
    if legal_form == "Công ty TNHH":
        variants.append(f"{stem} Co., Ltd")
    return variants


def messy_email(email):
    """The same address typed differently: case, spaces, plus tags."""
    local, domain = email.split("@")
    return [email.upper(), f"  {local.capitalize()}@{domain} ", f"{local}+crm@{domain}"]


class Identity:
    """One real customer contact; every lead made from it is a duplicate of the others."""

    __slots__ = ("company", "contact", "country", "email", "legal_form", "locale", "phone", "stem")

    def __init__(self, rng, index):
        locale = rng.choices(list(LOCALE_WEIGHTS), weights=LOCALE_WEIGHTS.values())[0]
        country, firsts, lasts, stems, legal_forms = LOCALES[locale]
        first, last = rng.choice(firsts), rng.choice(lasts)
        # Company stems repeat across identities; the index keeps companies apart.
        self.stem = f"{rng.choice(stems)} {index}"
        self.legal_form = rng.choice(legal_forms)
        self.locale = locale
        self.country = country
        self.contact = f"{first} {last}"
        self.company = company_name(self.stem, self.legal_form)
        domain = (
            rng.choice(PUBLIC_MAIL_DOMAINS)
            if rng.random() < 0.15
            else f"{ascii_slug(self.stem)}.example.com"
        )
        self.email = f"{ascii_slug(first)}.{ascii_slug(last)}{index}@{domain}"
        self.phone = national_phone(country, rng)

    def first_contact(self):
        return self.contact, self.company, self.email, self.phone

    def typed_again(self, rng):
        """Contact data of a duplicate lead: at least one key typed messily, one may be missing."""
        email = rng.choice(messy_email(self.email))
        phone = rng.choice(messy_phone(self.phone, self.country))
        company = rng.choice(messy_company(self.stem, self.legal_form))
        dropped = rng.random()
        if dropped < 0.2:
            email = False
        elif dropped < 0.4:
            phone = False
        return self.contact, company, email, phone
