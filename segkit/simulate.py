"""Simulate an online shop's raw clickstream export, with the truth planted in it.

:func:`simulate_shop` returns a :class:`Shop`: the events exactly as a tracker would export
them (text timestamps in mixed formats, legacy and unknown event names, inconsistent device
labels, missing fields, duplicate rows, bots), a CRM table, and the truth that later steps are
scored against: the persona and bot kind of every visitor, and the true UTC instant, session and
duplicate status of every exported row.

Six human personas (``decisive_buyer``, ``researcher``, ``bargain_hunter``, ``cart_abandoner``,
``loyal_repeat``, ``content_reader``) browse by persona-specific Markov chains over page types;
two bot kinds (``crawler``, ``headless``) visit alongside them. Everything is vectorised numpy: a
Python loop runs once per session *step* (all sessions advance together), never per event, so
a million events take a few seconds.

Randomness comes from ``numpy.random.default_rng(seed)`` only. Behaviour and dirt use two
independent child streams, so ``dirt=False`` yields the same visitors, sessions and events as
``dirt=True`` with the same seed, only rendered cleanly (with dirt, sessions whose timestamps are
rendered at second precision have their instants floored to the second).
"""
from __future__ import annotations

import json
import math
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ParameterError, did_you_mean, format_allowed

__all__ = [
    "Shop",
    "simulate_shop",
    "PERSONAS",
    "DEFAULT_PERSONA_WEIGHTS",
    "BOT_KINDS",
    "CANONICAL_RAW_EVENTS",
    "RAW_EVENT_ALIASES",
    "UNKNOWN_RAW_EVENTS",
    "COLUMN_MAP",
    "TIME_FORMATS",
    "PAGE_TYPES",
]

# --------------------------------------------------------------------------------------------
# Public vocabulary
# --------------------------------------------------------------------------------------------

PERSONAS: tuple[str, ...] = (
    "decisive_buyer",
    "researcher",
    "bargain_hunter",
    "cart_abandoner",
    "loyal_repeat",
    "content_reader",
)
DEFAULT_PERSONA_WEIGHTS: dict[str, float] = {
    "decisive_buyer": 0.15,
    "researcher": 0.20,
    "bargain_hunter": 0.15,
    "cart_abandoner": 0.15,
    "loyal_repeat": 0.10,
    "content_reader": 0.25,
}
BOT_KINDS: tuple[str, ...] = ("crawler", "headless")

#: Event names the tracker emits for the canonical vocabulary (most rows use these).
CANONICAL_RAW_EVENTS: tuple[str, ...] = (
    "page_view",
    "product_image_click",
    "review_click",
    "related_product_click",
    "scroll_depth_25",
    "scroll_depth_50",
    "scroll_depth_75",
    "scroll_depth_100",
    "engagement_time",
    "search",
    "wishlist_add",
    "add_to_cart",
    "cart_view",
    "checkout_start",
    "purchase",
    "video_play",
    "deep_read",
)
#: Legacy tracker names still firing on a few percent of rows: raw name -> canonical name.
RAW_EVENT_ALIASES: dict[str, str] = {
    "pageview": "page_view",
    "AddToCart": "add_to_cart",
    "add_to_cart_button": "add_to_cart",
    "wishlist_addition": "wishlist_add",
    "order_complete": "purchase",
}
#: Tracker noise no taxonomy knows; present only when ``dirt=True``.
UNKNOWN_RAW_EVENTS: tuple[str, ...] = ("gtm.load", "debug_ping", "consent_update")

#: Raw export column -> canonical column (see :mod:`segkit.schema`).
COLUMN_MAP: dict[str, str] = {
    "visitor_id": "user_id",
    "event_time": "timestamp",
    "event_name": "event",
    "page_url": "page",
    "page_type": "page_type",
    "product_id": "item_id",
    "product_category": "category",
    "price": "price",
    "revenue": "revenue",
    "search_term": "search_query",
    "scroll_pct": "scroll_depth",
    "engagement_ms": "engagement_ms",
    "device": "device",
    "user_agent": "user_agent",
    "ip": "ip",
    "referrer": "referrer",
}
_RAW_COLUMNS: tuple[str, ...] = tuple(COLUMN_MAP)

#: How ``event_time`` strings are rendered (``truth_events.time_format``), with an example each.
TIME_FORMATS: dict[str, str] = {
    "iso_z": "2024-01-03T10:15:02.123Z",
    "iso_offset": "2024-01-03T11:15:02+01:00",
    "epoch_ms": "1704276902123",
    "epoch_s": "1704276902",
    "naive_local": "2024-01-03 11:15:02",
    "unparseable": "not-a-date",
}
_FMT_NAMES = tuple(TIME_FORMATS)
_F_ISO_Z, _F_ISO_OFF, _F_EPOCH_MS, _F_EPOCH_S, _F_NAIVE, _F_BAD = range(6)
_FMT_PROBS = np.array([0.45, 0.15, 0.15, 0.10, 0.15])
_SECOND_PRECISION = np.array([False, True, False, True, True, False])
_UNPARSEABLE = ("", "not-a-date", "0000-00-00 00:00:00")

# --------------------------------------------------------------------------------------------
# States of the browsing chain. The first seven are pages (they emit a page_view); the next
# three are actions on the current page; the last ends the session.
# --------------------------------------------------------------------------------------------

_STATES = (
    "home", "category", "search", "product", "blog", "cart", "checkout",
    "add_to_cart", "wishlist_add", "purchase", "exit",
)
PAGE_TYPES: tuple[str, ...] = _STATES[:7]
_S = {s: i for i, s in enumerate(_STATES)}
_HOME, _CAT, _SEARCH, _PROD, _BLOG, _CART, _CHK, _ATC, _WISH, _BUY, _EXIT = range(11)
_N_FROM, _N_TO = 10, 11
_SCROLL_KIND = np.array([0, 0, 0, 1, 2, 3, 3, 0, 0, 0, 0])  # listing, product, blog, cart

_EV = {e: i for i, e in enumerate(CANONICAL_RAW_EVENTS)}
_E_PV, _E_IMG, _E_REV, _E_REL = 0, 1, 2, 3
_E_S25, _E_ENG, _E_SEARCH, _E_WISH, _E_ATC, _E_CARTV, _E_CHK, _E_BUY, _E_VIDEO, _E_DEEP = (
    4, 8, 9, 10, 11, 12, 13, 14, 15, 16,
)
_ALIAS_CODE = {name: len(CANONICAL_RAW_EVENTS) + i for i, name in enumerate(RAW_EVENT_ALIASES)}
_UNKNOWN_CODE = {name: len(CANONICAL_RAW_EVENTS) + len(RAW_EVENT_ALIASES) + i for i, name in enumerate(UNKNOWN_RAW_EVENTS)}
_RAW_NAMES = CANONICAL_RAW_EVENTS + tuple(RAW_EVENT_ALIASES) + UNKNOWN_RAW_EVENTS
_CANON_OF_CODE = np.array(
    [_EV[e] for e in CANONICAL_RAW_EVENTS]
    + [_EV[RAW_EVENT_ALIASES[a]] for a in RAW_EVENT_ALIASES]
    + [_UNKNOWN_CODE[u] for u in UNKNOWN_RAW_EVENTS],
    dtype=np.int16,
)

# --------------------------------------------------------------------------------------------
# Catalogue, content and search vocabulary
# --------------------------------------------------------------------------------------------

_CATEGORIES = ("shoes", "apparel", "accessories", "electronics", "home-kitchen", "sports-outdoor", "beauty", "kids")
_CAT_POP = np.array([0.20, 0.18, 0.10, 0.14, 0.12, 0.12, 0.08, 0.06])
_CAT_PRICE = np.array([85.0, 40.0, 25.0, 150.0, 45.0, 60.0, 20.0, 30.0])
_PRODUCTS_PER_CAT = 300
_CAT_TERMS = {
    "shoes": (["running shoes", "sneakers", "trail running shoes", "hiking boots", "leather boots"],
              ["cheap sneakers", "shoes sale", "discount shoes"]),
    "apparel": (["rain jacket", "merino sweater", "linen shirt", "slim fit jeans", "hoodie"],
                ["cheap t-shirts", "jacket sale", "discount jeans"]),
    "accessories": (["leather wallet", "backpack", "sunglasses", "wool scarf", "watch strap"],
                    ["cheap backpack", "sunglasses sale", "discount watch"]),
    "electronics": (["wireless headphones", "bluetooth speaker", "usb-c charger", "smartwatch", "e-reader"],
                    ["cheap headphones", "headphones sale", "discount speaker"]),
    "home-kitchen": (["coffee grinder", "chef knife", "cast iron pan", "french press", "bed linen"],
                     ["cheap pans", "kitchen sale", "discount knives"]),
    "sports-outdoor": (["yoga mat", "tent 2 person", "cycling gloves", "water bottle", "running vest"],
                       ["cheap yoga mat", "tent sale", "discount bike"]),
    "beauty": (["face serum", "sunscreen spf 50", "shampoo", "beard oil", "hand cream"],
               ["cheap skincare", "beauty sale", "discount perfume"]),
    "kids": (["kids rain boots", "lego set", "school backpack", "baby carrier", "kids bike"],
             ["cheap toys", "kids sale", "discount lego"]),
}
_GLOBAL_BARGAIN_TERMS = ("sale", "discount", "clearance", "deals", "outlet", "coupon code", "black friday deals",
                         "free shipping")
_TERMS: tuple[str, ...] = tuple(
    [t for c in _CATEGORIES for t in _CAT_TERMS[c][0] + _CAT_TERMS[c][1]] + list(_GLOBAL_BARGAIN_TERMS)
)
_TERMS_PER_CAT = 8
_GLOBAL_TERM0 = _TERMS_PER_CAT * len(_CATEGORIES)
_BLOG_THINGS = ("running-shoes", "rain-jackets", "headphones", "coffee-grinders", "yoga-mats", "backpacks",
                "face-serums", "kids-bikes", "tents", "leather-boots")
_BLOG_POSTS: tuple[str, ...] = tuple(
    pattern.format(thing=t)
    for t in _BLOG_THINGS
    for pattern in ("how-to-choose-{thing}", "best-{thing}-2024", "{thing}-care-guide", "{thing}-buying-mistakes")
)

# --------------------------------------------------------------------------------------------
# Traffic sources, devices and user agents
# --------------------------------------------------------------------------------------------

_SOURCES = ("direct", "google", "google_cpc", "bing", "email", "facebook", "instagram", "coupon", "affiliate")
_SOURCE_REFERRERS = {
    "direct": ["(direct)"],
    "google": ["https://www.google.com/", "https://www.google.de/"],
    "google_cpc": ["https://www.google.com/", "https://www.google.de/"],
    "bing": ["https://www.bing.com/"],
    "email": ["https://mail.google.com/", "https://outlook.live.com/", "android-app://com.google.android.gm"],
    "facebook": ["https://www.facebook.com/", "https://l.facebook.com/", "https://m.facebook.com/"],
    "instagram": ["https://www.instagram.com/", "https://l.instagram.com/"],
    "coupon": ["https://www.retailmenot.com/view/shop.example.com", "https://www.couponfollow.com/site/shop.example.com",
               "https://www.dealspotr.com/"],
    "affiliate": ["https://www.topcashback.com/", "https://www.rakuten.com/", "https://slickdeals.net/",
                  "https://www.mydealz.de/"],
}
_REF_STRINGS: tuple[str, ...] = tuple(r for s in _SOURCES for r in _SOURCE_REFERRERS[s])
_REF_START = np.cumsum([0] + [len(_SOURCE_REFERRERS[s]) for s in _SOURCES])[:-1]
_REF_COUNT = np.array([len(_SOURCE_REFERRERS[s]) for s in _SOURCES])
_SOURCE_UTM = {  # landing-page query string for campaign traffic (None: no campaign tags)
    "google_cpc": "utm_source=google&utm_medium=cpc&utm_campaign=brand",
    "email": "utm_source=newsletter&utm_medium=email&utm_campaign=weekly",
    "facebook": "utm_source=facebook&utm_medium=paid_social",
    "instagram": "utm_source=instagram&utm_medium=paid_social",
    "coupon": "utm_source=coupon&utm_medium=affiliate",
    "affiliate": "utm_source=affiliate&utm_medium=affiliate&aff_id=2231",
}
_UTM_STRINGS: tuple[str, ...] = tuple(_SOURCE_UTM.get(s) or "" for s in _SOURCES)
_UTM_PAID_SHARE = np.array([0, 0, 1, 0, 0.9, 0.5, 0.5, 0.8, 0.9])  # share of sessions that carry tags

_CHROME = ("120.0.6099.144", "119.0.6045.199", "121.0.6167.85", "118.0.5993.117")
_IOS = ("17_2_1", "17_1_2", "16_6_1", "17_3")
_FF = ("121.0", "120.0", "115.0")
_UA_FAMILIES: dict[str, list[str]] = {
    "ios_safari": [f"Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   f"Version/{v.split('_')[0]}.{v.split('_')[1]} Mobile/15E148 Safari/604.1" for v in _IOS],
    "ios_chrome": [f"Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   f"CriOS/{c} Mobile/15E148 Safari/604.1" for v, c in zip(_IOS, _CHROME)],
    "android_chrome": [f"Mozilla/5.0 (Linux; Android {a}; {m}) AppleWebKit/537.36 (KHTML, like Gecko) "
                       f"Chrome/{c} Mobile Safari/537.36"
                       for a, m, c in (("14", "Pixel 8", _CHROME[0]), ("13", "SM-S918B", _CHROME[1]),
                                       ("13", "SM-A536B", _CHROME[2]), ("12", "moto g(60)", _CHROME[3]),
                                       ("14", "Pixel 7a", _CHROME[1]))],
    "samsung_internet": ["Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
                         "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"],
    "android_firefox": [f"Mozilla/5.0 (Android 14; Mobile; rv:{v}) Gecko/{v} Firefox/{v}" for v in _FF],
    "win_chrome": [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   f"Chrome/{c} Safari/537.36" for c in _CHROME],
    "win_edge": [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                 f"Chrome/{c} Safari/537.36 Edg/{c.split('.')[0]}.0.2210.91" for c in _CHROME[:3]],
    "win_firefox": [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}) Gecko/20100101 Firefox/{v}" for v in _FF],
    "mac_safari": ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   f"Version/{v} Safari/605.1.15" for v in ("17.2.1", "17.1", "16.6")],
    "mac_chrome": [f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                   f"Chrome/{c} Safari/537.36" for c in _CHROME],
    "linux_firefox": [f"Mozilla/5.0 (X11; Linux x86_64; rv:{v}) Gecko/20100101 Firefox/{v}" for v in _FF],
    "ipad_safari": [f"Mozilla/5.0 (iPad; CPU OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                    f"Version/{v.split('_')[0]}.{v.split('_')[1]} Mobile/15E148 Safari/604.1" for v in _IOS],
    "android_tablet": ["Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
                       f"Chrome/{_CHROME[0]} Safari/537.36",
                       "Mozilla/5.0 (Linux; Android 12; Lenovo TB-J606F) AppleWebKit/537.36 (KHTML, like Gecko) "
                       f"Chrome/{_CHROME[2]} Safari/537.36"],
    # declared crawlers
    "googlebot": ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                  "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"],
    "bingbot": ["Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
                "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"],
    "ahrefsbot": ["Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"],
    "semrushbot": ["Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)"],
    "yandexbot": ["Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"],
    "python_requests": ["python-requests/2.31.0", "python-requests/2.28.2"],
    "curl": ["curl/8.4.0", "curl/7.81.0"],
}
_UA_FAMILY_NAMES = tuple(_UA_FAMILIES)
_UA_FAM = {f: i for i, f in enumerate(_UA_FAMILY_NAMES)}
_UA_STRINGS: tuple[str, ...] = tuple(u for f in _UA_FAMILY_NAMES for u in _UA_FAMILIES[f])
_UA_START = np.cumsum([0] + [len(_UA_FAMILIES[f]) for f in _UA_FAMILY_NAMES])[:-1]
_UA_COUNT = np.array([len(_UA_FAMILIES[f]) for f in _UA_FAMILY_NAMES])

_DEVICES = ("mobile", "desktop", "tablet")
_DEVICE_P = np.array([0.55, 0.38, 0.07])
_FAMILIES_BY_DEVICE = {
    "mobile": (["ios_safari", "ios_chrome", "android_chrome", "samsung_internet", "android_firefox"],
               [0.33, 0.07, 0.42, 0.12, 0.06]),
    "desktop": (["win_chrome", "win_edge", "win_firefox", "mac_safari", "mac_chrome", "linux_firefox"],
                [0.45, 0.17, 0.08, 0.15, 0.12, 0.03]),
    "tablet": (["ipad_safari", "android_tablet"], [0.7, 0.3]),
}
_CRAWLER_FAMILIES = (["googlebot", "bingbot", "ahrefsbot", "semrushbot", "yandexbot", "python_requests", "curl"],
                     [0.34, 0.18, 0.13, 0.11, 0.08, 0.10, 0.06])
_HEADLESS_FAMILIES = (["win_chrome", "mac_chrome", "win_edge", "linux_firefox"], [0.55, 0.2, 0.15, 0.1])
# Raw device labels by UA family group, with their shares (the tracker's labels are inconsistent).
_DEVICE_LABELS = ("iPhone", "android", "Android", "Desktop", "desktop", "PC", "Mobile", "mobile", "iPad", "tablet", "Tablet")
_DL = {d: i for i, d in enumerate(_DEVICE_LABELS)}
_LABEL_GROUPS = {  # group -> (labels, probabilities)
    "iphone": (["iPhone", "Mobile", "mobile"], [0.5, 0.25, 0.25]),
    "android": (["android", "Android", "Mobile", "mobile"], [0.3, 0.3, 0.2, 0.2]),
    "desktop": (["Desktop", "desktop", "PC"], [0.4, 0.4, 0.2]),
    "ipad": (["iPad", "tablet", "Tablet"], [0.5, 0.25, 0.25]),
    "android_tablet": (["tablet", "Tablet"], [0.5, 0.5]),
}
_LABEL_GROUP_NAMES = tuple(_LABEL_GROUPS)
_FAMILY_LABEL_GROUP = {
    "ios_safari": "iphone", "ios_chrome": "iphone", "android_chrome": "android", "samsung_internet": "android",
    "android_firefox": "android", "ipad_safari": "ipad", "android_tablet": "android_tablet",
}
# crawler IP ranges: (first, second, third range lo, third range hi) per family
_CRAWLER_IP = {
    "googlebot": [(66, 249, 64, 79)],
    "bingbot": [(157, 55, 39, 39), (207, 46, 13, 13), (40, 77, 167, 167)],
    "ahrefsbot": [(54, 36, 148, 149), (51, 222, 253, 253)],
    "semrushbot": [(185, 191, 171, 171)],
    "yandexbot": [(5, 255, 231, 231), (213, 180, 203, 203)],
    "python_requests": [(3, 120, 0, 255), (18, 196, 0, 255), (159, 89, 0, 255)],
    "curl": [(52, 14, 0, 255), (165, 227, 0, 255)],
}
_DATACENTER_IP = [(3, 75, 0, 255), (34, 141, 0, 255), (95, 216, 0, 255), (51, 91, 0, 255), (138, 68, 0, 255)]
_HUMAN_FIRST_OCTETS = np.array([2, 5, 31, 37, 46, 62, 77, 78, 79, 80, 82, 84, 85, 87, 88, 89, 91, 93, 94, 95,
                                109, 134, 176, 178, 188, 212, 213, 217])

# --------------------------------------------------------------------------------------------
# Behaviour: one "row" per persona, plus the abandoners' return visit and the two bot kinds
# --------------------------------------------------------------------------------------------

_BASE_TRANSITIONS: dict[str, dict[str, float]] = {
    "home": {"category": 3, "search": 1.5, "product": 1.5, "blog": 0.5, "cart": 0.3, "exit": 0.8},
    "category": {"product": 5, "category": 1, "search": 0.8, "home": 0.3, "blog": 0.1, "cart": 0.3, "exit": 1.0},
    "search": {"product": 5, "search": 1, "category": 0.5, "home": 0.1, "exit": 0.8},
    "product": {"product": 2, "add_to_cart": 1, "wishlist_add": 0.3, "category": 1.5, "search": 0.8, "home": 0.3,
                "blog": 0.1, "cart": 0.3, "exit": 1.5},
    "blog": {"blog": 2, "product": 0.5, "home": 0.3, "category": 0.2, "exit": 1.5},
    "cart": {"checkout": 2, "product": 1, "category": 0.5, "cart": 0.3, "home": 0.2, "exit": 1.0},
    "checkout": {"purchase": 3, "cart": 0.8, "exit": 0.7},
    "add_to_cart": {"cart": 2, "product": 1.5, "category": 0.8, "checkout": 0.8, "search": 0.3, "exit": 0.5},
    "wishlist_add": {"product": 2, "category": 1, "search": 0.3, "exit": 0.7},
    "purchase": {"exit": 4, "home": 0.4, "product": 0.3},
}
_BASE_DWELL = {"home": 10, "category": 14, "search": 12, "product": 28, "blog": 60, "cart": 14, "checkout": 40,
               "add_to_cart": 4, "wishlist_add": 3, "purchase": 5}
_SCROLL_DEFAULT = {  # P(max depth reached = none, 25, 50, 75, 100) by page kind
    "listing": [0.60, 0.25, 0.10, 0.04, 0.01],
    "product": [0.40, 0.30, 0.18, 0.08, 0.04],
    "blog": [0.25, 0.30, 0.20, 0.15, 0.10],
    "cart": [0.75, 0.20, 0.05, 0.0, 0.0],
}
_HOUR_W = np.array([0.3, 0.2, 0.12, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 2.2, 2.5, 3.0, 2.8, 2.5, 2.4, 2.5, 2.8,
                    3.2, 3.8, 4.2, 4.0, 3.0, 1.5])
_WEEKDAY_W = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 1.1, 1.2])  # Monday .. Sunday

_ROWS: dict[str, dict[str, Any]] = {
    "decisive_buyer": dict(
        min_steps=(4, 0.3),
        entry={"search": 0.45, "category": 0.3, "product": 0.2, "home": 0.05},
        transitions={
            "home": {"search": 2, "category": 2, "product": 1, "blog": 0, "cart": 0.1, "exit": 0.3},
            "search": {"product": 6, "search": 0.2, "category": 0.2, "exit": 0.2, "home": 0},
            "category": {"product": 6, "category": 0.3, "search": 0.3, "exit": 0.3, "blog": 0, "cart": 0.1,
                         "home": 0.05},
            "product": {"add_to_cart": 5, "product": 0.6, "wishlist_add": 0.05, "category": 0.3, "search": 0.3,
                        "home": 0.05, "blog": 0, "cart": 0.2, "exit": 0.4},
            "add_to_cart": {"checkout": 4, "cart": 1.5, "product": 0.3, "category": 0.1, "search": 0.1, "exit": 0.1},
            "cart": {"checkout": 8, "product": 0.2, "category": 0.05, "cart": 0.05, "home": 0, "exit": 0.2},
            "checkout": {"purchase": 20, "cart": 0.2, "exit": 0.3},
            "purchase": {"exit": 10, "home": 0.1, "product": 0.2},
        },
        precart_exit=0.2,
        dwell={"home": 7, "category": 10, "search": 8, "product": 20, "cart": 10, "checkout": 35},
        img=0.3, rev=0.15, related=0.3, video_product=0.02, video_blog=0.1, deep=0.2,
        scroll={"product": [0.35, 0.35, 0.18, 0.08, 0.04]},
        price_exp=1.0, bargain_terms=0.05, sessions=(1, 0.12),
        referrer=[0.25, 0.35, 0.2, 0.05, 0.05, 0.03, 0.03, 0.02, 0.02],
        registered=0.7, ltv=220.0,
    ),
    "researcher": dict(
        min_steps=(8, 0.25), leave=3.0,
        entry={"search": 0.3, "category": 0.35, "product": 0.3, "home": 0.05},
        transitions={
            "home": {"category": 3, "search": 1, "product": 2, "blog": 0.3, "cart": 0.1, "exit": 0.4},
            "category": {"product": 7, "category": 0.6, "search": 0.4, "exit": 0.5},
            "search": {"product": 7, "search": 0.5, "exit": 0.4},
            "product": {"product": 3.5, "add_to_cart": 0.25, "wishlist_add": 0.6, "category": 0.8, "search": 0.4,
                        "home": 0.1, "blog": 0.2, "cart": 0.1, "exit": 1.1},
            "cart": {"checkout": 0.8, "product": 2, "exit": 1},
            "checkout": {"purchase": 1.0, "cart": 1, "exit": 2},
        },
        precart_exit=0.6,
        dwell={"category": 14, "search": 12, "product": 22, "blog": 60},
        img=0.7, rev=0.55, related=0.8, video_product=0.15, video_blog=0.2, deep=0.4,
        scroll={"product": [0.15, 0.25, 0.30, 0.20, 0.10], "listing": [0.45, 0.3, 0.15, 0.07, 0.03]},
        price_exp=0.8, bargain_terms=0.05, sessions=(1, 0.15),
        referrer=[0.15, 0.5, 0.1, 0.1, 0.03, 0.04, 0.04, 0.02, 0.02],
        registered=0.55, ltv=150.0,
    ),
    "bargain_hunter": dict(
        min_steps=(5, 0.35), leave=3.0,
        entry={"search": 0.7, "category": 0.2, "home": 0.1},
        transitions={
            "home": {"search": 4, "category": 1.5, "product": 0.3, "blog": 0.1, "exit": 0.4},
            "search": {"product": 3, "search": 2.5, "category": 0.5, "exit": 0.9},
            "category": {"product": 3, "search": 2.5, "category": 0.8, "exit": 0.9, "blog": 0},
            "product": {"product": 0.4, "add_to_cart": 2.0, "wishlist_add": 0.3, "search": 3.5, "category": 0.8,
                        "home": 0.1, "blog": 0, "cart": 0.2, "exit": 1.6},
            "add_to_cart": {"search": 1.0, "cart": 1.5, "checkout": 1.5, "product": 0.4, "category": 0.3, "exit": 0.3},
            "checkout": {"purchase": 4, "cart": 0.5, "exit": 0.8},
        },
        precart_exit=1.0,
        dwell={"search": 9, "category": 11, "product": 15},
        img=0.4, rev=0.4, related=0.2, video_product=0.02, video_blog=0.05, deep=0.1,
        price_exp=3.0, bargain_terms=0.85, sessions=(1, 0.2),
        referrer=[0.08, 0.2, 0.12, 0.03, 0.05, 0.05, 0.05, 0.22, 0.2],
        registered=0.6, ltv=110.0,
    ),
    "cart_abandoner": dict(
        min_steps=(5, 0.3), leave=2.5,
        entry={"product": 0.35, "category": 0.3, "search": 0.25, "home": 0.1},
        transitions={
            "product": {"add_to_cart": 3, "product": 0.6, "wishlist_add": 0.3, "category": 0.4, "search": 0.3,
                        "cart": 0.8, "exit": 0.9, "blog": 0},
            "add_to_cart": {"cart": 4, "product": 0.8, "checkout": 0.6, "exit": 0.6, "category": 0.2},
            "cart": {"cart": 1.6, "product": 1.0, "checkout": 1.0, "category": 0.3, "home": 0.1, "exit": 2.0},
            "checkout": {"purchase": 0, "cart": 1.5, "exit": 2.0},
        },
        precart_exit=0.0, no_purchase=True,  # an abandoner session always reaches the cart
        dwell={"product": 22, "cart": 20, "checkout": 35},
        img=0.5, rev=0.4, related=0.3, video_product=0.03, video_blog=0.05, deep=0.1,
        price_exp=1.2, bargain_terms=0.15, sessions=(1, 0.15),
        referrer=[0.2, 0.35, 0.15, 0.05, 0.08, 0.07, 0.06, 0.02, 0.02],
        registered=0.55, ltv=70.0,
    ),
    "loyal_repeat": dict(
        min_steps=(3, 0.4),
        entry={"home": 0.35, "category": 0.2, "product": 0.35, "search": 0.1},
        transitions={
            "home": {"category": 1.5, "product": 3, "search": 0.8, "blog": 0.2, "cart": 0.3, "exit": 0.8},
            "category": {"product": 5, "category": 0.3, "search": 0.3, "home": 0.1, "blog": 0, "exit": 1.0},
            "product": {"add_to_cart": 3.5, "product": 0.6, "wishlist_add": 0.3, "category": 0.5, "search": 0.3,
                        "home": 0.1, "blog": 0, "cart": 0.2, "exit": 1.5},
            "add_to_cart": {"checkout": 3, "cart": 1.5, "product": 0.5, "category": 0, "search": 0, "exit": 0.2},
            "cart": {"checkout": 5, "product": 0.3, "category": 0, "home": 0, "exit": 0.4, "cart": 0.05},
            "checkout": {"purchase": 12, "exit": 0.3, "cart": 0.2},
            "purchase": {"exit": 10, "home": 0.1, "product": 0.2},
        },
        precart_exit=1.0,
        dwell={"home": 6, "category": 10, "product": 15, "cart": 9, "checkout": 30},
        img=0.5, rev=0.3, related=0.3, video_product=0.04, video_blog=0.1, deep=0.3,
        price_exp=0.9, bargain_terms=0.05, sessions=(0, 0.15), weekly=0.65,
        referrer=[0.45, 0.12, 0.03, 0.02, 0.3, 0.03, 0.03, 0.01, 0.01],
        registered=0.95, ltv=950.0,
    ),
    "content_reader": dict(
        min_steps=(3, 0.35), leave=3.0,
        entry={"blog": 0.9, "home": 0.05, "category": 0.05},
        transitions={
            "home": {"blog": 4, "category": 0.4, "product": 0.4, "search": 0.2, "exit": 0.8},
            "category": {"product": 2, "blog": 3, "exit": 1},
            "blog": {"blog": 2.2, "product": 0.3, "home": 0.15, "category": 0.1, "exit": 1.5},
            "product": {"blog": 2.5, "product": 0.5, "add_to_cart": 0.05, "category": 0.3, "exit": 1.2,
                        "wishlist_add": 0.1},
            "checkout": {"purchase": 1.0, "exit": 1},
        },
        precart_exit=1.0,
        dwell={"blog": 46, "product": 22},
        img=0.2, rev=0.2, related=0.2, video_product=0.05, video_blog=0.35, deep=0.75,
        scroll={"blog": [0.04, 0.08, 0.18, 0.32, 0.38], "listing": [0.3, 0.3, 0.2, 0.12, 0.08]},
        price_exp=1.0, bargain_terms=0.05, sessions=(1, 0.18), weekday=[1, 1, 1, 1, 1, 1.4, 1.5],
        referrer=[0.1, 0.45, 0.02, 0.05, 0.05, 0.15, 0.15, 0.01, 0.02],
        registered=0.4, ltv=45.0,
    ),
    "cart_abandoner_return": dict(  # the planted return visit of an abandoner: starts with a full cart
        min_steps=(2, 0.3),
        entry={"cart": 0.55, "product": 0.3, "home": 0.15},
        transitions={
            "home": {"cart": 2, "product": 1, "exit": 0.5},
            "product": {"add_to_cart": 1, "cart": 1.5, "product": 0.8, "exit": 1},
            "cart": {"checkout": 2.5, "product": 1, "cart": 0.5, "exit": 1},
            "checkout": {"purchase": 2.5, "cart": 0.8, "exit": 1.2},
        },
        precart_exit=0.5,
        dwell={"cart": 20, "checkout": 40},
        img=0.3, rev=0.2, related=0.2, video_product=0.02, video_blog=0.05, deep=0.1,
        price_exp=1.2, bargain_terms=0.1, referrer=[0.3, 0.1, 0.05, 0.0, 0.5, 0.02, 0.02, 0.005, 0.005],
    ),
    "crawler": dict(
        replace_base=True,
        entry={"home": 0.5, "category": 0.2, "product": 0.2, "blog": 0.1},
        transitions={s: {"home": 0.3, "category": 2, "product": 5, "blog": 1.5}
                     for s in ("home", "category", "product", "blog")},
        precart_exit=1.0, bot=True,
        dwell={s: 2.5 for s in ("home", "category", "product", "blog")}, dwell_sigma=0.7,
        img=0, rev=0, related=0, video_product=0, video_blog=0, deep=0, engagement=False,
        scroll={k: [1, 0, 0, 0, 0] for k in ("listing", "product", "blog", "cart")},
        price_exp=1.0, bargain_terms=0, max_steps=(35, 0.7, 8, 600),
    ),
    "headless": dict(
        replace_base=True,
        entry={"home": 0.6, "category": 0.4},
        transitions={
            "home": {"category": 3, "product": 1},
            "category": {"product": 6, "category": 1.5},
            "product": {"product": 2.5, "category": 2.5, "add_to_cart": 0.25},
            "add_to_cart": {"product": 2, "category": 1},
        },
        precart_exit=1.0, bot=True, const_gap=True,
        img=0, rev=0, related=0, video_product=0, video_blog=0, deep=0, engagement=False,
        scroll={k: [1, 0, 0, 0, 0] for k in ("listing", "product", "blog", "cart")},
        price_exp=0.5, bargain_terms=0, max_steps=(90, 0.5, 30, 1200),
    ),
}
_ROW_NAMES = tuple(_ROWS)
_R = {n: i for i, n in enumerate(_ROW_NAMES)}
_R_RETURN, _R_CRAWLER, _R_HEADLESS = _R["cart_abandoner_return"], _R["crawler"], _R["headless"]
_HUMAN_MAX_STEPS = 60
_ABANDONER_GAP_S = 50 * 3600.0  # abandoners who do not "return" stay away longer than 48 h
_RETURN_GAP_S = (2 * 3600.0, 40 * 3600.0)
_RETURN_SHARE = 0.4
_OFF_PERSONA_SHARE = 0.04  # share of a human's sessions that follow another persona's chain


def _build_row_tables() -> dict[str, np.ndarray]:
    n = len(_ROW_NAMES)
    t = {
        "P": np.zeros((n, 2, _N_FROM, _N_TO)),
        "P_stay": np.zeros((n, 2, _N_FROM, _N_TO)),
        "min_steps": np.zeros((n, 2)),
        "entry": np.zeros((n, _N_TO)),
        "dwell": np.zeros((n, _N_FROM)),
        "sigma": np.zeros(n),
        "scroll": np.zeros((n, 4, 5)),
        "engage": np.zeros(n, dtype=bool),
    }
    for k in ("img", "rev", "related", "video_product", "video_blog", "deep", "price_exp", "bargain_terms"):
        t[k] = np.zeros(n)
    for i, name in enumerate(_ROW_NAMES):
        spec = _ROWS[name]
        base = {} if spec.get("replace_base") else _BASE_TRANSITIONS
        trans: dict[str, dict[str, float]] = {k: dict(v) for k, v in base.items()}
        for frm, tos in spec["transitions"].items():
            trans.setdefault(frm, {}).update(tos)
        w = np.zeros((_N_FROM, _N_TO))
        for frm, tos in trans.items():
            for to, weight in tos.items():
                w[_S[frm], _S[to]] = weight
        if spec.get("no_purchase"):
            w[:, _BUY] = 0.0
        with_cart, no_cart = w.copy(), w.copy()
        no_cart[:, [_CHK, _BUY]] = 0.0
        no_cart[:, _CART] *= 0.15
        no_cart[:, _EXIT] *= spec["precart_exit"]
        for j, m in enumerate((no_cart, with_cart)):
            for key, mm in (("P", m.copy()), ("P_stay", m.copy())):
                if key == "P_stay":
                    mm[:, _EXIT] = 0.0
                else:
                    mm[:, _EXIT] *= spec.get("leave", 2.0)
                mm[mm.sum(axis=1) == 0, _EXIT] = 1.0
                cum = np.cumsum(mm / mm.sum(axis=1, keepdims=True), axis=1)
                cum[:, -1] = 1.0
                t[key][i, j] = cum
        t["min_steps"][i] = spec.get("min_steps", (0, 0))
        e = np.zeros(_N_TO)
        for s, weight in spec["entry"].items():
            e[_S[s]] = weight
        e = np.cumsum(e / e.sum())
        e[-1] = 1.0
        t["entry"][i] = e
        dw = dict(_BASE_DWELL)
        dw.update(spec.get("dwell", {}))
        t["dwell"][i] = [dw.get(s, 3.0) for s in _STATES[:_N_FROM]]
        t["sigma"][i] = spec.get("dwell_sigma", 0.75)
        sc = dict(_SCROLL_DEFAULT)
        sc.update(spec.get("scroll", {}))
        for j, kind in enumerate(("listing", "product", "blog", "cart")):
            c = np.cumsum(np.asarray(sc[kind], dtype=float) / np.sum(sc[kind]))
            c[-1] = 1.0
            t["scroll"][i, j] = c
        t["engage"][i] = spec.get("engagement", True)
        for k in ("img", "rev", "related", "video_product", "video_blog", "deep", "price_exp", "bargain_terms"):
            t[k][i] = spec[k]
    return t


_TABLES = _build_row_tables()


# --------------------------------------------------------------------------------------------
# Result container
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shop:
    """A simulated shop: the raw export plus everything that was planted in it.

    Attributes
    ----------
    events : pandas.DataFrame
        The raw export, one row per tracker hit, columns ``visitor_id, event_time, event_name,
        page_url, page_type, product_id, product_category, price, revenue, search_term,
        scroll_pct, engagement_ms, device, user_agent, ip, referrer``. Text columns are ``str``
        (missing as NaN); ``price, revenue, scroll_pct, engagement_ms`` are float. ``event_time``
        is text in mixed formats (see :data:`TIME_FORMATS`); naive ones are local times in
        :attr:`timezone`. ``page_type`` is set on page views only. ``referrer`` is the session's
        traffic source, repeated on every hit of the session (``"(direct)"`` for direct visits).
    column_map : dict of str to str
        Raw column -> canonical column (:data:`COLUMN_MAP`).
    timezone : str
        IANA time zone of the naive ``event_time`` strings.
    crm : pandas.DataFrame
        One row per registered human: ``customer_id`` (equal to their ``visitor_id``),
        ``lifetime_value``, ``is_vip`` (top 5 % of lifetime value), ``signup_date`` (YYYY-MM-DD).
    truth : pandas.DataFrame
        One row per visitor: ``user_id, persona`` (``"bot"`` for bots), ``is_bot, bot_kind``
        (NaN, ``"crawler"`` or ``"headless"``), ``returns_within_48h`` (had a session with an
        add_to_cart and no purchase and started a new session less than 48 h after it ended),
        ``n_sessions, n_events`` (behavioural events, no tracker noise or duplicates),
        ``n_purchases, revenue, device`` (canonical), ``is_registered``.
    truth_events : pandas.DataFrame
        Aligned row by row with :attr:`events`: ``timestamp`` (the true UTC instant the
        ``event_time`` string denotes; for unparseable strings the instant it would have been),
        ``session`` (global session number, ordered by visitor then time), ``event`` (canonical
        name, or the raw name for tracker noise), ``time_format`` (a key of :data:`TIME_FORMATS`),
        ``duplicate`` (``"exact"`` for a verbatim repeat, ``"near"`` for a double-fired tag, else
        NaN) and ``noise`` (True for the unknown tracker events).
    params : dict
        The arguments used.
    """

    events: pd.DataFrame
    column_map: dict[str, str]
    timezone: str
    crm: pd.DataFrame
    truth: pd.DataFrame
    truth_events: pd.DataFrame = field(repr=False)
    params: dict[str, Any]

    def __repr__(self) -> str:
        return (f"Shop(n_events={len(self.events):,}, n_visitors={len(self.truth):,}, "
                f"n_customers={len(self.crm):,}, timezone={self.timezone!r})")

    def write(self, path: str | Path) -> dict[str, Path]:
        """Write the export as CSV, with the CRM, truth tables and parameters beside it.

        Parameters
        ----------
        path : str or Path
            The events file, e.g. ``data/shop/events.csv``. Beside it go ``<stem>_crm.csv``,
            ``<stem>_truth.csv``, ``<stem>_truth_events.parquet`` and ``<stem>_params.json``.
            Parent folders are created.

        Returns
        -------
        dict of str to Path
            Keys ``events, crm, truth, truth_events, params``.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> shop = simulate_shop(50, n_days=7, seed=3)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     paths = shop.write(pathlib.Path(d) / "events.csv")
        ...     sorted(p.name for p in paths.values())
        ['events.csv', 'events_crm.csv', 'events_params.json', 'events_truth.csv', 'events_truth_events.parquet']
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = path.stem
        out = {
            "events": path,
            "crm": path.with_name(f"{stem}_crm.csv"),
            "truth": path.with_name(f"{stem}_truth.csv"),
            "truth_events": path.with_name(f"{stem}_truth_events.parquet"),
            "params": path.with_name(f"{stem}_params.json"),
        }
        self.events.to_csv(out["events"], index=False)
        self.crm.to_csv(out["crm"], index=False)
        self.truth.to_csv(out["truth"], index=False)
        self.truth_events.to_parquet(out["truth_events"], index=False)
        out["params"].write_text(json.dumps(self.params, indent=2, default=str) + "\n")
        return out


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ParameterError(name, value, f"an integer >= {lo}")
    return int(value)


def _check_weights(persona_weights: Mapping[str, float] | None) -> dict[str, float]:
    if persona_weights is None:
        return dict(DEFAULT_PERSONA_WEIGHTS)
    if not isinstance(persona_weights, Mapping):
        raise ParameterError("persona_weights", persona_weights,
                             f"a mapping from persona to weight, personas {list(PERSONAS)}")
    out = {p: 0.0 for p in PERSONAS}
    for key, w in persona_weights.items():
        if key not in PERSONAS:
            raise ParameterError(
                "persona_weights", key, list(PERSONAS),
                message=f"Parameter 'persona_weights' has unknown persona {key!r};{did_you_mean(str(key), PERSONAS)} "
                        f"allowed: {format_allowed(PERSONAS)}",
            )
        if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) or not math.isfinite(w) or w < 0:
            raise ParameterError(f"persona_weights.{key}", w, "a finite number >= 0")
        out[key] = float(w)
    if sum(out.values()) <= 0:
        raise ParameterError("persona_weights", dict(persona_weights), "weights >= 0 with a positive sum")
    total = sum(out.values())
    return {k: v / total for k, v in out.items()}


def _check_timezone(timezone: Any) -> str:
    if not isinstance(timezone, str) or not timezone:
        raise ParameterError("timezone", timezone, "an IANA time zone name such as 'Europe/Berlin' or 'UTC'")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        hint = did_you_mean(timezone, zoneinfo.available_timezones())
        raise ParameterError(
            "timezone", timezone, None,
            message=f"Parameter 'timezone' got {timezone!r}, which is not an IANA time zone;{hint} "
                    "allowed: a name from zoneinfo.available_timezones(), e.g. 'Europe/Berlin' or 'UTC'",
        ) from None
    return timezone


def _check_start(start: Any) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(start)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise ParameterError("start", start, "a date such as '2024-01-01'")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


# --------------------------------------------------------------------------------------------
# Small vectorised helpers
# --------------------------------------------------------------------------------------------


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts ``c``, return (owner index repeated c times, rank 0..c-1 within owner)."""
    counts = counts.astype(np.int64, copy=False)
    owner = np.repeat(np.arange(counts.size), counts)
    if owner.size == 0:
        return owner, owner
    starts = np.cumsum(counts) - counts
    rank = np.arange(owner.size) - starts[owner]
    return owner, rank


def _pick(rng: np.random.Generator, cum: np.ndarray, size: int) -> np.ndarray:
    """Draw ``size`` indices from a 1-D cumulative distribution."""
    return np.searchsorted(cum, rng.random(size), side="right").clip(0, cum.size - 1)


def _cum(p: Any) -> np.ndarray:
    c = np.cumsum(np.asarray(p, dtype=float) / np.sum(p))
    c[-1] = 1.0
    return c


def _largest_remainder(n: int, weights: np.ndarray) -> np.ndarray:
    raw = weights * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - counts.sum()
    if rest > 0:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:rest]] += 1
    return counts


def _group_start_mask(keys: np.ndarray) -> np.ndarray:
    first = np.ones(keys.size, dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return first


def _strings(values: Any) -> pa.Array:
    """An Arrow ``large_string`` array (the storage of pandas' ``str`` dtype)."""
    if isinstance(values, pa.Array):
        return values.cast(pa.large_string())
    return pa.array(list(values), pa.large_string())


def _take(dictionary: pa.Array, idx: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Look up ``dictionary[idx]`` as an Arrow string array, null where ``null`` (or idx < 0)."""
    mask = idx < 0
    if null is not None:
        mask = mask | null
    ind = pa.array(np.where(mask, 0, idx).astype(np.int32), mask=mask if mask.any() else None)
    return pc.take(dictionary, ind)


def _digits(mat: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    for k in range(width - 1, -1, -1):
        mat[:, col + k] = 48 + values % 10
        values = values // 10


def _iso_matrix(ns: np.ndarray, *, sep: int, millis: bool, extra: int) -> np.ndarray:
    """ASCII ``YYYY-MM-DD?HH:MM:SS[.mmm]`` for int64 nanoseconds (UTC or already-local)."""
    ms = ns // 1_000_000
    days = ms // 86_400_000
    rem = ms - days * 86_400_000
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    width = (23 if millis else 19) + extra
    mat = np.empty((ns.size, width), dtype=np.uint8)
    _digits(mat, 0, year, 4)
    mat[:, 4] = mat[:, 7] = 45  # '-'
    _digits(mat, 5, month, 2)
    _digits(mat, 8, day, 2)
    mat[:, 10] = sep
    _digits(mat, 11, rem // 3_600_000, 2)
    mat[:, 13] = mat[:, 16] = 58  # ':'
    _digits(mat, 14, (rem // 60_000) % 60, 2)
    _digits(mat, 17, (rem // 1000) % 60, 2)
    if millis:
        mat[:, 19] = 46  # '.'
        _digits(mat, 20, rem % 1000, 3)
    return mat


def _local_ns(ns: np.ndarray, tz: str) -> np.ndarray:
    idx = pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC").tz_convert(tz).tz_localize(None)
    return idx.asi8


def _render_times(ns: np.ndarray, fmt: np.ndarray, bad: np.ndarray, tz: str, rng: np.random.Generator) -> pa.Array:
    """Render instants as strings, one format per row, straight into one Arrow buffer."""
    n = ns.size
    fmt = np.where(bad, _F_BAD, fmt)
    lengths = np.zeros(n, dtype=np.int64)
    groups: list[tuple[np.ndarray, Any]] = []
    for f in range(5):
        sel = np.flatnonzero(fmt == f)
        if sel.size == 0:
            continue
        x = ns[sel]
        if f == _F_ISO_Z:
            mat = _iso_matrix(x, sep=84, millis=True, extra=1)
            mat[:, -1] = 90  # 'Z'
        elif f in (_F_ISO_OFF, _F_NAIVE):
            local = _local_ns(x, tz)
            mat = _iso_matrix(local, sep=84 if f == _F_ISO_OFF else 32, millis=False, extra=6 if f == _F_ISO_OFF else 0)
            if f == _F_ISO_OFF:
                off = (local - x) // 60_000_000_000
                mat[:, 19] = np.where(off < 0, 45, 43)  # '-' / '+'
                a = np.abs(off)
                _digits(mat, 20, a // 60, 2)
                mat[:, 22] = 58
                _digits(mat, 23, a % 60, 2)
        else:
            v = x // (1_000_000 if f == _F_EPOCH_MS else 1_000_000_000)
            nd = np.maximum(1, np.floor(np.log10(np.maximum(np.abs(v), 1))).astype(np.int64) + 1) + (v < 0)
            lengths[sel] = nd
            groups.append((sel, (v, nd)))
            continue
        lengths[sel] = mat.shape[1]
        groups.append((sel, mat))
    sel = np.flatnonzero(fmt == _F_BAD)
    choice = rng.integers(0, len(_UNPARSEABLE), sel.size)
    lengths[sel] = np.array([len(u) for u in _UNPARSEABLE])[choice]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    buf = np.zeros(int(offsets[-1]), dtype=np.uint8)
    for rows, data in groups:
        base = offsets[rows]
        if isinstance(data, np.ndarray):
            buf[base[:, None] + np.arange(data.shape[1])] = data
        else:
            v, nd = data
            neg = v < 0
            buf[base[neg]] = 45
            av = np.abs(v)
            for k in range(int(nd.max())):
                m = k < nd - neg
                buf[base[m] + nd[m] - 1 - k] = 48 + (av[m] // 10**k) % 10
    for j, text in enumerate(_UNPARSEABLE):
        rows = sel[choice == j]
        if text and rows.size:
            buf[offsets[rows][:, None] + np.arange(len(text))] = np.frombuffer(text.encode(), dtype=np.uint8)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf))


def _ip_strings(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> pa.Array:
    cols = [pc.cast(pa.array(x.astype(np.int64)), pa.large_string()) for x in (a, b, c, d)]
    return pc.binary_join_element_wise(*cols, pa.scalar(".", pa.large_string()))


def _range_ips(rng: np.random.Generator, ranges: list[tuple[int, int, int, int]], n: int) -> tuple[np.ndarray, ...]:
    r = np.asarray(ranges)[rng.integers(0, len(ranges), n)]
    third = r[:, 2] + (rng.random(n) * (r[:, 3] - r[:, 2] + 1)).astype(np.int64)
    return r[:, 0], r[:, 1], third, rng.integers(1, 255, n)


# --------------------------------------------------------------------------------------------
# The browsing simulation: every session advances one step per loop iteration
# --------------------------------------------------------------------------------------------

_FIELDS = ("sess", "t", "ev", "ptype", "obj", "item", "term", "aux", "landing")
_FIELD_DTYPES = (np.int32, np.float64, np.int8, np.int8, np.int32, np.int32, np.int32, np.float64, bool)


class _Buffer:
    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in _FIELDS}

    def add(self, sess, t, ev, ptype, obj, item=-1, term=-1, aux=np.nan, landing=False) -> None:
        n = len(sess)
        if n == 0:
            return
        for k, v, dt in zip(_FIELDS, (sess, t, ev, ptype, obj, item, term, aux, landing), _FIELD_DTYPES):
            arr = np.asarray(v, dtype=dt)
            self.parts[k].append(np.full(n, arr, dtype=dt) if arr.ndim == 0 else arr)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: (np.concatenate(v) if v else np.empty(0, dt)) for (k, v), dt in zip(self.parts.items(), _FIELD_DTYPES)}


def _simulate_steps(rng: np.random.Generator, sess: dict[str, np.ndarray],
                    catalog: dict[str, Any]) -> dict[str, np.ndarray]:
    """Advance every session one step per iteration; return the emitted events as flat arrays.

    ``t`` is seconds since the session start; sessions are placed in calendar time afterwards.
    """
    T = _TABLES
    n = sess["row"].size
    row = sess["row"]
    u = rng.random(n)
    state = (u[:, None] >= T["entry"][row][:, :-1]).sum(axis=1).astype(np.int64)
    forced = np.where(state == _SEARCH, _SEARCH, -1)  # a session "entering" on search starts on home
    state[state == _SEARCH] = _HOME
    t = np.zeros(n)
    has_cart = sess["cart_val"] > 0
    cart_val = sess["cart_val"].copy()
    cur_ptype = np.full(n, _HOME, dtype=np.int64)
    cur_obj = np.zeros(n, dtype=np.int64)
    focus = sess["focus"].copy()
    buf = _Buffer()
    active = np.arange(n)
    step = 0
    cat_cum = _cum(_CAT_POP)
    n_blog = len(_BLOG_POSTS)
    while active.size:
        a = active
        m = a.size
        st = state[a]
        r = row[a]
        t0 = t[a]
        z = rng.standard_normal(m)
        dw = T["dwell"][r, st] * sess["dwell_mult"][a] * np.exp(T["sigma"][r] * z)
        cg = sess["const_gap"][a]
        machine = cg > 0
        dw = np.where(machine, cg + 0.05 * z, dw)
        uu = rng.random((9, m))
        # ---- the page this step shows (page states only)
        c_cur = focus[a]
        on_product = cur_ptype[a] == _PROD
        c_rand = np.searchsorted(cat_cum, uu[1], side="right").clip(0, len(_CATEGORIES) - 1)
        is_cat, is_prod, is_search, is_blog = st == _CAT, st == _PROD, st == _SEARCH, st == _BLOG
        c_catpage = np.where(uu[0] < 0.25, c_rand, c_cur)
        c_prod = np.where(on_product, np.where(uu[0] < 0.85, catalog["cat"][cur_obj[a]], c_rand), c_cur)
        rank = (uu[2] ** T["price_exp"][r] * _PRODUCTS_PER_CAT).astype(np.int64)  # exponent > 1: cheaper items
        pidx = catalog["cat_start"][c_prod] + rank.clip(0, _PRODUCTS_PER_CAT - 1)
        bargain = uu[3] < T["bargain_terms"][r]
        generic = c_cur * _TERMS_PER_CAT + (uu[4] * 5).astype(np.int64).clip(0, 4)
        glob = uu[4] < 0.4
        cat_bargain = c_cur * _TERMS_PER_CAT + 5 + ((uu[4] - 0.4) / 0.6 * 3).astype(np.int64).clip(0, 2)
        n_glob = len(_GLOBAL_BARGAIN_TERMS)
        glob_term = _GLOBAL_TERM0 + (uu[4] / 0.4 * n_glob).astype(np.int64).clip(0, n_glob - 1)
        term = np.where(bargain, np.where(glob, glob_term, cat_bargain), generic)
        blog = (uu[4] ** 1.3 * n_blog).astype(np.int64).clip(0, n_blog - 1)
        new_obj = np.select([is_cat, is_prod, is_search, is_blog], [c_catpage, pidx, term, blog], 0)
        focus[a] = np.select([is_cat, is_prod], [c_catpage, c_prod], c_cur)
        # ---- next state (needed now for the related-product click)
        hc = has_cart[a].astype(np.int64)
        cum = T["P"][r, hc, np.minimum(st, _N_FROM - 1)]
        nxt = (uu[5][:, None] >= cum[:, :-1]).sum(axis=1)
        f = forced[a]
        nxt = np.where(f >= 0, f, nxt)
        forced[a] = -1
        early = (nxt == _EXIT) & (step + 1 < sess["min_steps"][a])
        if early.any():
            q = np.flatnonzero(early)
            stay = T["P_stay"][r[q], hc[q], np.minimum(st[q], _N_FROM - 1)]
            nxt[q] = (uu[8][q][:, None] >= stay[:, :-1]).sum(axis=1)
        nxt = np.where(step + 1 >= sess["max_steps"][a], _EXIT, nxt)
        # ---- primary events
        page = st < 7
        delta = np.where(is_search, 0.3 + 1.2 * uu[6], 0.0)
        dw = np.maximum(dw, delta + 0.5)
        tp = t0 + delta
        span = dw - delta
        p = np.flatnonzero(page)
        buf.add(a[p], tp[p], _E_PV, st[p], new_obj[p], np.where(is_prod[p], new_obj[p], -1), landing=step == 0)
        q = np.flatnonzero(is_search)
        buf.add(a[q], t0[q], _E_SEARCH, cur_ptype[a[q]], cur_obj[a[q]], term=new_obj[q])
        q = np.flatnonzero(st == _CART)
        buf.add(a[q], tp[q] + 0.05 + 0.5 * uu[7][q], _E_CARTV, _CART, 0)
        q = np.flatnonzero(st == _CHK)
        buf.add(a[q], tp[q] + 0.1 + 0.9 * uu[7][q], _E_CHK, _CHK, 0)
        q = np.flatnonzero(st == _ATC)
        if q.size:
            item = np.where(cur_ptype[a[q]] == _PROD, cur_obj[a[q]], -1)
            buf.add(a[q], t0[q], _E_ATC, cur_ptype[a[q]], cur_obj[a[q]], item)
            price = np.where(item >= 0, catalog["price"][np.maximum(item, 0)], 0.0)
            qty = 1 + (uu[7][q] < 0.15)
            cart_val[a[q]] += price * qty
            has_cart[a[q]] = True
        q = np.flatnonzero(st == _WISH)
        buf.add(a[q], t0[q], _E_WISH, cur_ptype[a[q]], cur_obj[a[q]], np.where(cur_ptype[a[q]] == _PROD, cur_obj[a[q]], -1))
        q = np.flatnonzero(st == _BUY)
        if q.size:
            value = cart_val[a[q]]
            revenue = np.round(value + np.where(value < 50, 4.95, 0.0), 2)
            buf.add(a[q], t0[q], _E_BUY, cur_ptype[a[q]], cur_obj[a[q]], aux=revenue)
            cart_val[a[q]] = 0.0
            has_cart[a[q]] = False
        # ---- in-page micro events (humans only: bots have zero rates)
        eng = page & T["engage"][r]
        if eng.any():
            e = np.flatnonzero(eng)
            ee, rr, kind = a[e], r[e], _SCROLL_KIND[st[e]]
            lvl = (rng.random(e.size)[:, None] >= T["scroll"][rr, kind][:, :4]).sum(axis=1)
            own, k = _expand(lvl)
            ts = tp[e][own] + span[e][own] * 0.9 * (k + rng.random(own.size)) / (lvl[own] + 0.5)
            buf.add(ee[own], ts, _E_S25 + k, st[e][own], new_obj[e][own], aux=25.0 * (k + 1))
            af = 0.4 + 0.5 * rng.random(e.size)
            nh = np.floor(span[e] * af / 15.0).astype(np.int64).clip(0, 80)
            own, k = _expand(nh)
            ts = tp[e][own] + (k + 1) * span[e][own] / (nh[own] + 0.5) + rng.uniform(-3, 3, own.size)
            ts = np.minimum(ts, t0[e][own] + dw[e][own] - 0.01)
            buf.add(ee[own], ts, _E_ENG, st[e][own], new_obj[e][own], aux=np.round(15000 + rng.normal(0, 40, own.size)))
            prod = st[e] == _PROD
            cm = sess["click_mult"][ee]
            for code, lam in ((_E_IMG, T["img"][rr]), (_E_REV, T["rev"][rr])):
                cnt = np.where(prod, rng.poisson(lam * cm), 0)
                own, _ = _expand(cnt)
                ts = tp[e][own] + span[e][own] * (0.05 + 0.9 * rng.random(own.size))
                buf.add(ee[own], ts, code, _PROD, new_obj[e][own], new_obj[e][own])
            uv = rng.random((3, e.size))
            vid = np.where(prod, uv[0] < T["video_product"][rr], (st[e] == _BLOG) & (uv[0] < T["video_blog"][rr]))
            q = np.flatnonzero(vid)
            buf.add(ee[q], tp[e][q] + span[e][q] * (0.1 + 0.5 * uv[1][q]), _E_VIDEO, st[e][q], new_obj[e][q],
                    np.where(prod[q], new_obj[e][q], -1))
            q = np.flatnonzero((st[e] == _BLOG) & (lvl >= 3) & (span[e] > 40) & (uv[2] < T["deep"][rr]))
            buf.add(ee[q], tp[e][q] + span[e][q] * 0.93, _E_DEEP, _BLOG, new_obj[e][q])
            q = np.flatnonzero(prod & (nxt[e] == _PROD) & (uv[2] < T["related"][rr]))
            buf.add(ee[q], tp[e][q] + span[e][q] * 0.97, _E_REL, _PROD, new_obj[e][q], new_obj[e][q])
        # ---- advance
        cur_ptype[a[p]] = st[p]
        cur_obj[a[p]] = new_obj[p]
        t[a] = t0 + dw
        state[a] = nxt
        active = a[nxt != _EXIT]
        step += 1
    return buf.arrays()


# --------------------------------------------------------------------------------------------
# Visitors and their sessions
# --------------------------------------------------------------------------------------------


def _catalog(rng: np.random.Generator) -> dict[str, Any]:
    n_cat = len(_CATEGORIES)
    cat = np.repeat(np.arange(n_cat), _PRODUCTS_PER_CAT)
    raw = _CAT_PRICE[cat] * np.exp(0.6 * rng.standard_normal(cat.size))
    cents = np.where(rng.random(cat.size) < 0.7, 0.99, 0.49)
    price = np.maximum(np.floor(raw), 2) + cents
    order = np.lexsort((price, cat))  # sorted by category, then price: index within category ~ price rank
    cat, price = cat[order], price[order]
    ids = rng.permutation(cat.size) + 1
    return {
        "cat": cat,
        "price": price,
        "cat_start": np.arange(n_cat) * _PRODUCTS_PER_CAT,
        "id_str": _strings(f"p{i:05d}" for i in ids),
    }


def _session_calendar(rng: np.random.Generator, rows: np.ndarray, n_days: int, start_weekday: int) -> np.ndarray:
    """Local seconds since the window start for sessions of the given persona rows."""
    out = np.empty(rows.size)
    for r in np.unique(rows):
        sel = np.flatnonzero(rows == r)
        wd = np.asarray(_ROWS[_ROW_NAMES[r]].get("weekday", _WEEKDAY_W), dtype=float)
        day_w = wd[(start_weekday + np.arange(n_days)) % 7]
        day = _pick(rng, _cum(day_w), sel.size)
        hour = _pick(rng, _cum(_HOUR_W), sel.size)
        out[sel] = day * 86400.0 + hour * 3600.0 + rng.random(sel.size) * 3600.0
    return out


def simulate_shop(
    n_users: int = 12000,
    *,
    n_days: int = 56,
    start: str | pd.Timestamp = "2024-01-01",
    seed: int = 0,
    timezone: str = "Europe/Berlin",
    bot_share: float = 0.05,
    dirt: bool = True,
    persona_weights: Mapping[str, float] | None = None,
) -> Shop:
    """Simulate an online shop's raw clickstream export with planted personas, bots and dirt.

    Parameters
    ----------
    n_users : int, default=12000
        Number of visitors, bots included; about 70 events each (the default gives ~840k events).
    n_days : int, default=56
        Length of the observation window in days; sessions start inside it.
    start : str or Timestamp, default="2024-01-01"
        First day of the window (local midnight in ``timezone``).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``; equal arguments give identical frames.
    timezone : str, default="Europe/Berlin"
        IANA zone of the visitors' local clocks and of the naive ``event_time`` strings.
    bot_share : float, default=0.05
        Share of visitors that are bots, in [0, 0.5]; 55 % of them are declared crawlers,
        45 % headless browsers with human user agents but machine timing.
    dirt : bool, default=True
        Plant export dirt: mixed and unparseable timestamps, inconsistent device labels, missing
        values, legacy event names, unknown tracker events, tracking-plan violations (scroll without
        depth, search without term, purchase without revenue), URL variants, exact and near
        duplicate rows, lightly shuffled rows. ``False`` gives ISO-8601 UTC timestamps
        (``2024-01-03T10:15:02.123Z``), canonical device labels (mobile/desktop/tablet) and event
        names, time-sorted rows, and no planted missing values, noise or duplicates (crawlers still
        send no referrer). Visitors, sessions and events are those of ``dirt=True``.
    persona_weights : mapping of str to float, optional
        Mix of the human personas (:data:`PERSONAS`); normalised, personas left out get weight 0.
        Default :data:`DEFAULT_PERSONA_WEIGHTS`.

    Returns
    -------
    Shop
        ``events`` (raw export), ``column_map``, ``timezone``, ``crm``, ``truth``,
        ``truth_events`` and ``params``; see :class:`Shop`.

    Raises
    ------
    ParameterError
        If an argument is out of range, a persona name is unknown or the time zone does not exist.

    Examples
    --------
    >>> shop = simulate_shop(300, n_days=14, seed=1)
    >>> list(shop.events.columns[:3])
    ['visitor_id', 'event_time', 'event_name']
    >>> shop.truth["persona"].nunique()
    7
    >>> shop.events.rename(columns=shop.column_map).columns[0]
    'user_id'
    """
    n_users = _check_int("n_users", n_users, 1)
    n_days = _check_int("n_days", n_days, 1)
    seed = _check_int("seed", seed, 0)
    if isinstance(bot_share, bool) or not isinstance(bot_share, (int, float, np.integer, np.floating)) \
            or not (0.0 <= float(bot_share) <= 0.5):
        raise ParameterError("bot_share", bot_share, "a number in [0, 0.5]")
    if not isinstance(dirt, (bool, np.bool_)):
        raise ParameterError("dirt", dirt, [True, False])
    weights = _check_weights(persona_weights)
    tz = _check_timezone(timezone)
    start_ts = _check_start(start)
    params = {"n_users": n_users, "n_days": n_days, "start": str(start_ts.date()), "seed": seed, "timezone": tz,
              "bot_share": float(bot_share), "dirt": bool(dirt), "persona_weights": dict(weights)}

    rng_b, rng_d = np.random.default_rng(seed).spawn(2)
    catalog = _catalog(rng_b)

    # ---- visitors
    n_bots = int(round(float(bot_share) * n_users))
    n_crawl = int(round(n_bots * 0.55))
    n_head = n_bots - n_crawl
    n_hum = n_users - n_bots
    counts = _largest_remainder(n_hum, np.array([weights[p] for p in PERSONAS]))
    urow = np.concatenate([np.repeat(np.arange(len(PERSONAS)), counts),
                           np.full(n_crawl, _R_CRAWLER), np.full(n_head, _R_HEADLESS)]).astype(np.int64)
    urow = urow[rng_b.permutation(n_users)]
    is_bot = urow >= _R_CRAWLER
    is_human = ~is_bot
    hex_ids = rng_b.choice(16**10, size=n_users, replace=False)
    user_str = _strings(f"{x:010x}" for x in hex_ids)
    fav = _pick(rng_b, _cum(_CAT_POP), n_users)
    dwell_mult = np.exp(0.25 * rng_b.standard_normal(n_users))
    click_mult = np.exp(0.3 * rng_b.standard_normal(n_users))
    returner = (urow == _R["cart_abandoner"]) & (rng_b.random(n_users) < _RETURN_SHARE)

    # devices and user agents
    device = _pick(rng_b, _cum(_DEVICE_P), n_users)
    family = np.zeros(n_users, dtype=np.int64)
    for d, name in enumerate(_DEVICES):
        fams, probs = _FAMILIES_BY_DEVICE[name]
        sel = np.flatnonzero(is_human & (device == d))
        family[sel] = np.array([_UA_FAM[f] for f in fams])[_pick(rng_b, _cum(probs), sel.size)]
    for kind, (fams, probs) in ((_R_CRAWLER, _CRAWLER_FAMILIES), (_R_HEADLESS, _HEADLESS_FAMILIES)):
        sel = np.flatnonzero(urow == kind)
        family[sel] = np.array([_UA_FAM[f] for f in fams])[_pick(rng_b, _cum(probs), sel.size)]
    ua_idx = _UA_START[family] + (rng_b.random(n_users) * _UA_COUNT[family]).astype(np.int64)
    ua_name = np.asarray(_UA_STRINGS, dtype=object)[ua_idx]
    googlebot_mobile = (family == _UA_FAM["googlebot"]) & np.array(["Android" in s for s in ua_name])
    device[is_bot] = np.where(googlebot_mobile[is_bot], 0, 1)
    group_of_family = {f: _LABEL_GROUP_NAMES.index(_FAMILY_LABEL_GROUP.get(f, "desktop")) for f in _UA_FAMILY_NAMES}
    label_group = np.array([group_of_family[f] for f in _UA_FAMILY_NAMES])[family]
    label_group[googlebot_mobile] = _LABEL_GROUP_NAMES.index("android")

    # ---- sessions: how many, and when (sampled start; fixed up after the browsing is simulated)
    weeks = n_days / 7.0
    start_weekday = start_ts.weekday()
    n_s = np.zeros(n_users, dtype=np.int64)
    for r in range(len(PERSONAS)):
        sel = urow == r
        base, per_week = _ROWS[PERSONAS[r]]["sessions"]
        n_s[sel] = base + rng_b.poisson(per_week * weeks, sel.sum())
    n_s[urow == _R_CRAWLER] = 1 + rng_b.poisson(0.25 * weeks, (urow == _R_CRAWLER).sum())
    n_s[urow == _R_HEADLESS] = 1 + rng_b.poisson(0.15 * weeks, (urow == _R_HEADLESS).sum())
    loyal = np.flatnonzero(urow == _R["loyal_repeat"])
    n_weeks = int(math.ceil(n_days / 7))
    pref_wd = rng_b.integers(0, 7, loyal.size)
    pref_hour = _pick(rng_b, _cum(_HOUR_W), loyal.size)
    wk_day = ((pref_wd - start_weekday) % 7)[:, None] + 7 * np.arange(n_weeks)[None, :]
    attend = (rng_b.random((loyal.size, n_weeks)) < _ROWS["loyal_repeat"]["weekly"]) & (wk_day < n_days)
    none = (attend.sum(axis=1) + n_s[loyal]) == 0
    n_s[loyal[none]] = 1
    # regular (calendar) sessions
    s_user = np.repeat(np.arange(n_users), n_s)
    s_row = urow[s_user]
    s_local = _session_calendar(rng_b, np.where(s_row < len(PERSONAS), s_row, 0), n_days, start_weekday)
    li, wi = np.nonzero(attend)
    w_user = loyal[li]
    w_local = (wk_day[li, wi] * 86400.0 + pref_hour[li] * 3600.0 + rng_b.normal(0, 3600, li.size)
               + rng_b.random(li.size) * 3600)
    w_local = np.clip(w_local, 0, n_days * 86400.0 - 1)
    h_user = np.concatenate([s_user, w_user])
    h_local = np.concatenate([s_local, w_local])
    h_keep = is_human[h_user]
    h_user, h_local = h_user[h_keep], h_local[h_keep]
    local0 = start_ts.value
    utc = pd.DatetimeIndex((local0 + (h_local * 1e9).astype(np.int64)).view("M8[ns]")).tz_localize(
        tz, ambiguous=np.zeros(h_local.size, dtype=bool), nonexistent="shift_forward")
    ws_utc = pd.Timestamp(start_ts).tz_localize(tz, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")
    h_start = (utc.asi8 - ws_utc.value) / 1e9
    # bots: crawlers at any time, headless browsers on a daily schedule
    b_sel = np.flatnonzero(is_bot[s_user])
    b_user = s_user[b_sel]
    b_start = rng_b.random(b_sel.size) * n_days * 86400.0
    head = urow[b_user] == _R_HEADLESS
    if head.any():
        first = _group_start_mask(b_user)
        rank = np.arange(b_user.size) - np.maximum.accumulate(np.where(first, np.arange(b_user.size), 0))
        day0 = rng_b.integers(0, n_days, n_users)
        hour0 = rng_b.random(n_users) * 24
        sched = (day0[b_user] + rank) * 86400.0 + hour0[b_user] * 3600.0 + rng_b.normal(0, 90, b_user.size)
        b_start = np.clip(np.where(head, sched, b_start), 0.0, n_days * 86400.0 - 1.0)
    # the abandoners' planted return visits
    r_user = np.flatnonzero(returner)
    all_user = np.concatenate([h_user, b_user, r_user])
    all_start = np.concatenate([h_start, b_start, np.full(r_user.size, -np.inf)])
    all_row = np.concatenate([urow[h_user], urow[b_user], np.full(r_user.size, _R_RETURN)])
    is_return = all_row == _R_RETURN
    # order: by user, then sampled start; a return visit right after the user's first session
    key = all_start.copy()
    firsts = np.full(n_users, np.inf)
    np.minimum.at(firsts, all_user[~is_return], all_start[~is_return])
    key[is_return] = firsts[all_user[is_return]] + 1e-6
    order = np.lexsort((key, all_user))
    s_user, s_start, s_row, s_ret = all_user[order], all_start[order], all_row[order], is_return[order]
    n_sess = s_user.size
    # off-persona sessions (not for abandoners, whose truth is "never buys unless returning")
    off = (s_row < len(PERSONAS)) & (s_row != _R["cart_abandoner"]) & (rng_b.random(n_sess) < _OFF_PERSONA_SHARE)
    others = np.array([i for i, p in enumerate(PERSONAS) if p != "cart_abandoner"])
    s_browse = np.where(off, others[rng_b.integers(0, others.size, n_sess)], s_row)
    max_steps = np.full(n_sess, _HUMAN_MAX_STEPS, dtype=np.int64)
    for rr in (_R_CRAWLER, _R_HEADLESS):
        med, sig, lo, hi = _ROWS[_ROW_NAMES[rr]]["max_steps"]
        sel = s_row == rr
        max_steps[sel] = np.clip(med * np.exp(sig * rng_b.standard_normal(sel.sum())), lo, hi).astype(np.int64)
    med_sig = _TABLES["min_steps"][s_browse]
    min_steps = np.round(med_sig[:, 0] * np.exp(med_sig[:, 1] * rng_b.standard_normal(n_sess))).astype(np.int64)
    bot_gap = 1.5 + 1.5 * rng_b.random(n_users)
    const_gap = np.where(s_row == _R_HEADLESS, bot_gap[s_user], 0.0)
    s_focus = np.where(rng_b.random(n_sess) < 0.6, fav[s_user], _pick(rng_b, _cum(_CAT_POP), n_sess))
    in_cart = catalog["cat_start"][s_focus] + rng_b.integers(0, _PRODUCTS_PER_CAT, n_sess)
    cart0 = np.where(s_ret, catalog["price"][in_cart], 0.0)  # a return visit starts with the abandoned cart
    sess = {"row": s_browse, "dwell_mult": dwell_mult[s_user], "click_mult": click_mult[s_user], "focus": s_focus,
            "max_steps": max_steps, "min_steps": min_steps, "const_gap": const_gap, "cart_val": cart0}
    ev = _simulate_steps(rng_b, sess, catalog)

    # ---- place sessions in time: start_k = max(sampled_k, end_{k-1} + gap_k), per visitor
    dur = np.zeros(n_sess)
    np.maximum.at(dur, ev["sess"], ev["t"])
    gap = np.where(s_row == _R["cart_abandoner"], _ABANDONER_GAP_S, 1800.0)
    gap = np.where(s_ret, rng_b.uniform(*_RETURN_GAP_S, n_sess), gap)
    gap = np.where(is_bot[s_user], 600.0, gap)
    first = _group_start_mask(s_user)
    prev_dur = np.concatenate([[0.0], dur[:-1]])
    inc = np.where(first, 0.0, prev_dur + gap)
    grp = pd.Series(s_user)
    c = pd.Series(inc).groupby(grp).cumsum().to_numpy()
    x = pd.Series(np.where(np.isinf(s_start), -1e15, s_start) - c).groupby(grp).cummax().to_numpy()
    start_s = c + x
    keep = start_s <= n_days * 86400.0
    new_id = np.cumsum(keep) - 1
    s_user, s_row, start_s, dur, s_ret = s_user[keep], s_row[keep], start_s[keep], dur[keep], s_ret[keep]
    n_sess = s_user.size
    ekeep = keep[ev["sess"]]
    ev = {k: v[ekeep] for k, v in ev.items()}
    ev["sess"] = new_id[ev["sess"]].astype(np.int32)
    sess_ns = ws_utc.value + np.round(start_s * 1e9).astype(np.int64)
    ns = sess_ns[ev["sess"]] + np.round(ev["t"] * 1e9).astype(np.int64)
    ns -= ns % 1_000_000

    # per-session attributes: traffic source, IP, time format
    src_p = np.zeros((len(_ROW_NAMES), len(_SOURCES)))
    for i, name in enumerate(_ROW_NAMES):
        src_p[i] = _cum(_ROWS[name].get("referrer", [1] + [0] * (len(_SOURCES) - 1)))
    source = (rng_b.random(n_sess)[:, None] >= src_p[s_row][:, :-1]).sum(axis=1)
    ref_idx = _REF_START[source] + (rng_b.random(n_sess) * _REF_COUNT[source]).astype(np.int64)
    ref_null = s_row == _R_CRAWLER
    tagged = rng_b.random(n_sess) < _UTM_PAID_SHARE[source]
    sid = rng_b.integers(0, 16**12, n_sess)
    utm = np.asarray(_UTM_STRINGS, dtype=object)[source]
    sess_suffix = _strings(f"{u}&sid={s:012x}" if tg else "" for u, s, tg in zip(utm, sid, tagged))
    # IPs: humans keep one (mobile ones sometimes change), some share NAT IPs; bots from known ranges
    n_nat = max(2, n_hum // 60)
    nat = (rng_b.integers(0, 2**31, (n_nat, 4)) % np.array([1, 256, 256, 254])) + np.array([0, 0, 0, 1])
    nat[:, 0] = rng_b.choice(_HUMAN_FIRST_OCTETS, n_nat)
    user_ip = np.column_stack([rng_b.choice(_HUMAN_FIRST_OCTETS, n_users), rng_b.integers(0, 256, (n_users, 2)),
                               rng_b.integers(1, 255, n_users)])
    on_nat = is_human & (rng_b.random(n_users) < 0.06)
    user_ip[on_nat] = nat[rng_b.integers(0, n_nat, on_nat.sum())]
    head_users = np.flatnonzero(urow == _R_HEADLESS)
    if head_users.size:
        n_groups = max(1, int(round(head_users.size / 3)))
        grp_ip = np.column_stack(_range_ips(rng_b, _DATACENTER_IP, n_groups))
        user_ip[head_users] = grp_ip[rng_b.integers(0, n_groups, head_users.size)]
    s_ip = user_ip[s_user].copy()
    change = (device[s_user] == 0) & is_human[s_user] & ~on_nat[s_user] & (rng_b.random(n_sess) < 0.35)
    s_ip[change, 1:3] = rng_b.integers(0, 256, (change.sum(), 2))
    s_ip[change, 3] = rng_b.integers(1, 255, change.sum())
    for fam, ranges in _CRAWLER_IP.items():
        sel = np.flatnonzero((s_row == _R_CRAWLER) & (family[s_user] == _UA_FAM[fam]))
        if sel.size:
            s_ip[sel] = np.column_stack(_range_ips(rng_b, ranges, sel.size))
    sess_ip = _ip_strings(*s_ip.T)

    # ---- truth per visitor
    e_user = s_user[ev["sess"]]
    atc = np.bincount(ev["sess"][ev["ev"] == _E_ATC], minlength=n_sess) > 0
    buys = np.bincount(ev["sess"][ev["ev"] == _E_BUY], minlength=n_sess)
    s_end = start_s + dur
    nxt_same = np.concatenate([s_user[1:] == s_user[:-1], [False]])
    nxt_start = np.concatenate([start_s[1:], [np.inf]])
    returned = atc & (buys == 0) & nxt_same & (nxt_start - s_end < 48 * 3600.0)
    rev_user = np.bincount(e_user[ev["ev"] == _E_BUY], weights=ev["aux"][ev["ev"] == _E_BUY], minlength=n_users)
    persona_names = np.asarray(PERSONAS + ("", "bot", "bot"), dtype=object)
    bot_kind = np.asarray([None] * (len(PERSONAS) + 1) + ["crawler", "headless"], dtype=object)
    p_registered = np.array([_ROWS[p]["registered"] for p in PERSONAS] + [0, 0, 0])
    registered = is_human & (rng_b.random(n_users) < p_registered[urow])
    truth = pd.DataFrame({
        "user_id": pd.Series(user_str, dtype="str"),
        "persona": pd.Series(persona_names[urow], dtype="str"),
        "is_bot": is_bot,
        "bot_kind": pd.Series(bot_kind[urow], dtype="str"),
        "returns_within_48h": np.bincount(s_user[returned], minlength=n_users) > 0,
        "n_sessions": np.bincount(s_user, minlength=n_users),
        "n_events": np.bincount(e_user, minlength=n_users),
        "n_purchases": np.bincount(s_user, weights=buys, minlength=n_users).astype(np.int64),
        "revenue": np.round(rev_user, 2),
        "device": pd.Series(np.asarray(_DEVICES, dtype=object)[device], dtype="str"),
        "is_registered": registered,
    })
    # ---- CRM
    reg = np.flatnonzero(registered)
    ltv_med = np.array([_ROWS[p]["ltv"] for p in PERSONAS] + [0, 0, 0])[urow[reg]]
    ltv = np.round(ltv_med * np.exp(0.6 * rng_b.standard_normal(reg.size)) + rev_user[reg], 2)
    vip = ltv >= np.quantile(ltv, 0.95) if reg.size else np.zeros(0, dtype=bool)
    age = np.where(urow[reg] == _R["loyal_repeat"], 700.0, 250.0) * rng_b.exponential(1.0, reg.size)
    signup = (np.datetime64(start_ts.date(), "D") - np.minimum(age, 3650).astype(np.int64)).astype(str)
    crm = pd.DataFrame({
        "customer_id": pd.Series(pc.take(user_str, pa.array(reg)), dtype="str"),
        "lifetime_value": ltv,
        "is_vip": vip,
        "signup_date": pd.Series(signup, dtype="str"),
    })

    events, truth_events = _render(rng_d, bool(dirt), tz, ev, ns, s_user, s_row, e_user, user_str, ua_idx,
                                   label_group, device, ref_idx, ref_null, tagged, sess_suffix, sess_ip, catalog)
    return Shop(events=events, column_map=dict(COLUMN_MAP), timezone=tz, crm=crm, truth=truth,
                truth_events=truth_events, params=params)


# --------------------------------------------------------------------------------------------
# Rendering the export, with dirt
# --------------------------------------------------------------------------------------------


def _render(rng, dirt, tz, ev, ns, s_user, s_row, e_user, user_str, ua_idx, label_group, device, ref_idx, ref_null,
            sess_tagged, sess_suffix, sess_ip, catalog):
    n0 = ns.size
    n_sess = s_user.size
    code = ev["ev"].astype(np.int16)
    # time format per session; second-precision formats carry whole seconds
    if dirt:
        s_fmt = _pick(rng, _cum(_FMT_PROBS), n_sess)
        fmt0 = s_fmt[ev["sess"]]
        ns = np.where(_SECOND_PRECISION[fmt0], ns - ns % 1_000_000_000, ns)
    else:
        fmt0 = np.zeros(n0, dtype=np.int64)
    # tracker noise: unknown event names, copied from real hits (crawlers run no tags)
    src = np.arange(n0)
    noise_code = np.empty(0, np.int16)
    noise_ns = np.empty(0, np.int64)
    noise_src = np.empty(0, np.int64)
    if dirt:
        not_crawler = s_row[ev["sess"]] != _R_CRAWLER
        pv = np.flatnonzero((code == _E_PV) & not_crawler)
        land = np.flatnonzero(ev["landing"] & not_crawler)
        anyrow = np.flatnonzero(not_crawler)
        picks = [
            (pv[rng.random(pv.size) < 0.025], "gtm.load", (30, 900)),
            (land[rng.random(land.size) < 0.04], "consent_update", (500, 6000)),
            (anyrow[rng.random(anyrow.size) < 0.003], "debug_ping", (0, 400)),
        ]
        noise_src = np.concatenate([p[0] for p in picks])
        noise_code = np.concatenate([np.full(p[0].size, _UNKNOWN_CODE[p[1]], np.int16) for p in picks])
        noise_ns = np.concatenate([ns[p[0]] + rng.integers(p[2][0], p[2][1] + 1, p[0].size) * 1_000_000 for p in picks])
        f = fmt0[noise_src]
        noise_ns = np.where(_SECOND_PRECISION[f], noise_ns - noise_ns % 1_000_000_000, noise_ns)
    src1 = np.concatenate([src, noise_src])
    code1 = np.concatenate([code, noise_code])
    ns1 = np.concatenate([ns, noise_ns])
    noise1 = np.concatenate([np.zeros(n0, bool), np.ones(noise_src.size, bool)])
    o = np.argsort(ns1, kind="stable")
    src1, code1, ns1, noise1 = src1[o], code1[o], ns1[o], noise1[o]
    n1 = src1.size
    sess1 = ev["sess"][src1]
    user1 = e_user[src1]
    fmt1 = fmt0[src1]
    naive = np.flatnonzero(fmt1 == _F_NAIVE)
    if naive.size:  # a wall time repeated or skipped by a DST change cannot denote one instant: use an offset
        wall = pd.DatetimeIndex(_local_ns(ns1[naive], tz).view("M8[ns]"))
        back = wall.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        fmt1[naive[back.isna()]] = _F_ISO_OFF
    canon1 = code1.copy()
    # field dirt on the level-1 rows
    raw1 = code1.copy()
    bad1 = np.zeros(n1, bool)
    if dirt:
        u = rng.random((11, n1), dtype=np.float32)
        raw1 = np.where((code1 == _E_PV) & (u[0] < 0.03), _ALIAS_CODE["pageview"], raw1)
        raw1 = np.where((code1 == _E_ATC) & (u[0] < 0.018), _ALIAS_CODE["AddToCart"], raw1)
        raw1 = np.where((code1 == _E_ATC) & (u[0] >= 0.018) & (u[0] < 0.03), _ALIAS_CODE["add_to_cart_button"], raw1)
        raw1 = np.where((code1 == _E_WISH) & (u[0] < 0.03), _ALIAS_CODE["wishlist_addition"], raw1)
        raw1 = np.where((code1 == _E_BUY) & (u[0] < 0.03), _ALIAS_CODE["order_complete"], raw1)
        bad1 = u[1] < 0.001
    is_noise = noise1
    ptype1 = ev["ptype"][src1].astype(np.int64)
    obj1 = ev["obj"][src1].astype(np.int64)
    item1 = np.where(is_noise, -1, ev["item"][src1]).astype(np.int64)
    term1 = np.where(is_noise | (code1 != _E_SEARCH), -1, ev["term"][src1]).astype(np.int64)
    aux1 = ev["aux"][src1]
    is_pv = code1 == _E_PV
    is_scroll = (code1 >= _E_S25) & (code1 < _E_S25 + 4)
    # page URL: scheme + host + path (+ trailing slash) [+ campaign tags on landing hits]
    n_cat = len(_CATEGORIES)
    paths = (["/"] + [f"/category/{c}" for c in _CATEGORIES]
             + [f"/search?q={t.replace(' ', '+')}" for t in _TERMS]
             + [f"/product/{p}" for p in catalog["id_str"].to_pylist()]
             + [f"/blog/{b}" for b in _BLOG_POSTS] + ["/cart", "/checkout"])
    n_paths = len(paths)
    path_off = np.array([0, 1, 1 + n_cat, 1 + n_cat + len(_TERMS), 1 + n_cat + len(_TERMS) + catalog["cat"].size])
    path_key = np.select(
        [ptype1 == _HOME, ptype1 == _CAT, ptype1 == _SEARCH, ptype1 == _PROD, ptype1 == _BLOG, ptype1 == _CART],
        [0, path_off[1] + obj1, path_off[2] + obj1, path_off[3] + obj1, path_off[4] + obj1, n_paths - 2],
        n_paths - 1,
    )
    if dirt:
        scheme = (u[2] < 0.04).astype(np.int64)
        host = np.where(u[3] < 0.02, 1, np.where(u[3] < 0.03, 2, 0))
        slash = ((u[4] < 0.04) & (ptype1 != _HOME) & (ptype1 != _SEARCH)).astype(np.int64)
    else:
        scheme = host = slash = np.zeros(n1, np.int64)
    url_key = ((scheme * 3 + host) * 2 + slash) * n_paths + path_key
    url_dict = _strings(
        sch + hst + pth + ("/" if sl else "")
        for sch in ("https://", "http://")
        for hst in ("shop.example.com", "SHOP.EXAMPLE.COM", "Shop.Example.com")
        for sl in (0, 1)
        for pth in paths
    )
    land1 = ev["landing"][src1] & ~is_noise
    tagged = land1 & sess_tagged[sess1]
    suffix_idx = np.where(tagged, sess1, n_sess)  # index n_sess holds ""
    sep_idx = np.where(tagged, np.where(ptype1 == _SEARCH, 2, 1), 0)
    # every other column as (dictionary, index at level 1, null mask at level 1)
    cat1 = np.where(item1 >= 0, catalog["cat"][np.maximum(item1, 0)], np.where(is_pv & (ptype1 == _CAT), obj1, -1))
    viol = (u[6] < 0.01) if dirt else np.zeros(n1, bool)
    if dirt:
        grp = label_group[user1]
        lab = np.zeros(n1, np.int64)
        for g, gname in enumerate(_LABEL_GROUP_NAMES):
            sel = np.flatnonzero(grp == g)
            labels, probs = _LABEL_GROUPS[gname]
            pick = np.searchsorted(_cum(probs), u[7][sel], side="right").clip(0, len(labels) - 1)
            lab[sel] = np.array([_DL[x] for x in labels])[pick]
        device_col = (_strings(_DEVICE_LABELS), lab, u[8] < 0.05)
    else:
        device_col = (_strings(_DEVICES), device[user1], None)
    text: dict[str, tuple] = {
        "visitor_id": (user_str, user1, None),
        "event_name": (_strings(_RAW_NAMES), raw1, None),
        "page_type": (_strings(PAGE_TYPES), np.where(is_pv, ptype1, -1), (u[5] < 0.05) if dirt else None),
        "product_id": (catalog["id_str"], item1, None),
        "product_category": (_strings(_CATEGORIES), cat1, None),
        "search_term": (_strings(_TERMS), np.where(viol, -1, term1), None),
        "device": device_col,
        "user_agent": (_strings(_UA_STRINGS), ua_idx[user1], (u[9] < 0.02) if dirt else None),
        "ip": (sess_ip, sess1, None),
        "referrer": (_strings(_REF_STRINGS), ref_idx[sess1], ref_null[sess1] | ((u[10] < 0.03) if dirt else False)),
    }
    numbers = {
        "price": np.where(item1 >= 0, catalog["price"][np.maximum(item1, 0)], np.nan),
        "revenue": np.where((code1 == _E_BUY) & ~viol, aux1, np.nan),
        "scroll_pct": np.where(is_scroll & ~viol, aux1, np.nan),
        "engagement_ms": np.where(code1 == _E_ENG, aux1, np.nan),
    }
    # near duplicates (double-firing tags, < 1 s apart) and exact duplicate rows
    if dirt:
        cand = np.flatnonzero(~is_noise & ~bad1 & ((fmt1 == _F_ISO_Z) | (fmt1 == _F_EPOCH_MS)))
        near = np.sort(rng.choice(cand, size=min(cand.size, int(round(0.003 * n1))), replace=False))
        near_ns = ns1[near] + rng.integers(20, 951, near.size) * 1_000_000
    else:
        near = np.empty(0, np.int64)
        near_ns = np.empty(0, np.int64)
    ix1 = np.concatenate([np.arange(n1), near])
    nsR = np.concatenate([ns1, near_ns])
    badR = np.concatenate([bad1, np.zeros(near.size, bool)])
    dupR = np.concatenate([np.zeros(n1, np.int8), np.ones(near.size, np.int8)])
    nR = ix1.size
    exact = np.sort(rng.choice(nR, size=int(round(0.005 * nR)), replace=False)) if dirt else np.empty(0, np.int64)
    ix2 = np.concatenate([np.arange(nR), exact])
    ns2 = nsR[ix2]
    dup2 = np.concatenate([dupR, np.full(exact.size, 2, np.int8)])
    order = np.argsort(ns2, kind="stable")
    if dirt:  # exports are not perfectly sorted
        order = order[np.argsort(np.arange(order.size) + rng.integers(0, 25, order.size), kind="stable")]
    fR = ix2[order]
    f1 = ix1[fR]
    # ---- assemble, taking every column once in final row order
    data: dict[str, Any] = {}
    for name in _RAW_COLUMNS:
        if name == "event_time":
            data[name] = pd.Series(_render_times(nsR[fR], fmt1[f1], badR[fR], tz, rng), dtype="str")
        elif name == "page_url":
            suffixes = pa.concat_arrays([sess_suffix, _strings([""])])
            joined = pc.binary_join_element_wise(
                pc.take(url_dict, pa.array(url_key[f1])), pc.take(_strings(["", "?", "&"]), pa.array(sep_idx[f1])),
                pc.take(suffixes, pa.array(suffix_idx[f1])), pa.scalar("", pa.large_string()))
            data[name] = pd.Series(joined, dtype="str")
        elif name in numbers:
            data[name] = numbers[name][f1]
        else:
            dictionary, idx, null = text[name]
            data[name] = pd.Series(_take(dictionary, idx[f1], None if null is None else null[f1]), dtype="str")
    events = pd.DataFrame(data)
    dup_names = np.asarray([None, "near", "exact"], dtype=object)
    canon_idx = _CANON_OF_CODE[canon1[f1]].astype(np.int64)
    truth_events = pd.DataFrame({
        "timestamp": pd.DatetimeIndex(ns2[order].view("M8[ns]")).tz_localize("UTC"),
        "session": sess1[f1].astype(np.int64),
        "event": pd.Series(_take(_strings(_RAW_NAMES), canon_idx), dtype="str"),
        "time_format": pd.Series(_take(_strings(_FMT_NAMES), np.where(badR[fR], _F_BAD, fmt1[f1])), dtype="str"),
        "duplicate": pd.Series(dup_names[dup2[order]], dtype="str"),
        "noise": is_noise[f1],
    })
    return events, truth_events


def simulate_to_parquet(
    path: str | Path,
    n_users: int,
    *,
    chunk_users: int = 20_000,
    seed: int = 0,
    taxonomy: str | Path | None = None,
    **shop_kwargs: Any,
) -> dict[str, Any]:
    """Simulate a large shop in chunks and write its canonical events as a Parquet dataset.

    Each chunk is an independent shop (seed ``seed + i``, visitor ids prefixed ``c{i}-``) read
    through :func:`segkit.load_events` and, when ``taxonomy`` is given, mapped with
    :func:`segkit.apply_taxonomy`; so memory stays bounded by one chunk whatever ``n_users`` is.

    Parameters
    ----------
    path : str or Path
        Folder to create; one ``part-NNNNN.parquet`` per chunk.
    n_users : int
        Visitors in all (about 72 events each with the default settings).
    chunk_users : int, default=20000
        Visitors per chunk.
    seed : int, default=0
        Seed of the first chunk.
    taxonomy : path, optional
        Taxonomy YAML applied to each chunk.
    **shop_kwargs
        Passed to :func:`simulate_shop` (``n_days``, ``bot_share``, ``dirt``, ...).

    Returns
    -------
    dict
        ``{"path", "files", "events", "rejected", "users"}``.
    """
    from .io import load_events
    from .taxonomy import apply_taxonomy, load_taxonomy

    n_users = _check_int("n_users", n_users, 1)
    chunk_users = _check_int("chunk_users", chunk_users, 50)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tax = load_taxonomy(taxonomy) if taxonomy is not None else None
    files, events, rejected, start = [], 0, 0, 0
    for i, begin in enumerate(range(0, n_users, chunk_users)):
        size = min(chunk_users, n_users - begin)
        shop = simulate_shop(max(size, 50), seed=seed + i, **shop_kwargs)
        raw = shop.events.assign(visitor_id=f"c{i}-" + shop.events["visitor_id"].astype("string"))
        loaded = load_events(raw, columns=shop.column_map, timezone=shop.timezone)
        frame = apply_taxonomy(loaded.events, tax) if tax is not None else loaded.events
        file = out / f"part-{i:05d}.parquet"
        frame.to_parquet(file, index=False)
        files.append(file)
        events += len(frame)
        rejected += len(loaded.rejected)
        start += size
    return {"path": out, "files": files, "events": events, "rejected": rejected, "users": start}
