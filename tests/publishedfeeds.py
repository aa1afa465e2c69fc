"""Feed bodies in the exact shape their publishers serve them, cut down to a few records (docs/feeds.md).

The names and addresses are the documentation ones (RFC 2606 and RFC 5737 / 3849) where the publisher's own
would be; everything else (field names and order, quoting, spacing, the metadata and comment lines) is as
the publishers write it.
"""

from __future__ import annotations

import json

# Spamhaus DROP (https://www.spamhaus.org/drop/drop_v4.json): one JSON object per line, compact, and a last
# line describing the file.
SPAMHAUS_DROP_V4 = (
    b'{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}\n'
    b'{"cidr":"198.51.100.0/24","sblid":"SBL434604","rir":"arin"}\n'
    b'{"cidr":"203.0.113.0/25","sblid":"SBL286275","rir":"apnic"}\n'
    b'{"type":"metadata","timestamp":1790072042,"size":104461,"records":3,'
    b'"copyright":"(c) 2026 The Spamhaus Project SLU","terms":"https://www.spamhaus.org/drop/terms/"}\n'
)

# ThreatFox's JSON export (https://threatfox.abuse.ch/export/json/recent/): an object keyed by IOC id, each
# value a list of one IOC object, pretty-printed.
THREATFOX_JSON = json.dumps(
    {
        "1891291": [
            {
                "ioc_value": "c2.evil.example",
                "ioc_type": "domain",
                "threat_type": "botnet_cc",
                "malware": "win.cobalt_strike",
                "malware_alias": "Agentemis,BEACON,CobaltStrike",
                "malware_printable": "Cobalt Strike",
                "first_seen_utc": "2026-11-30 01:39:33",
                "last_seen_utc": None,
                "confidence_level": 100,
                "is_compromised": False,
                "reference": None,
                "tags": "CobaltStrike",
                "anonymous": "0",
                "reporter": "abuse_ch",
            }
        ],
        "1891289": [
            {
                "ioc_value": "198.51.100.36:5555",
                "ioc_type": "ip:port",
                "threat_type": "botnet_cc",
                "malware": "win.cobalt_strike",
                "malware_alias": None,
                "malware_printable": "Cobalt Strike",
                "first_seen_utc": "2026-11-30 01:34:48",
                "last_seen_utc": "2026-11-30 02:46:23",
                "confidence_level": 75,
                "is_compromised": False,
                "reference": None,
                "tags": "CobaltStrike,drb-ra",
                "anonymous": "0",
                "reporter": "drb_ra",
            }
        ],
        "1891280": [
            {
                "ioc_value": "https://dl.evil.example/stage2.bin",
                "ioc_type": "url",
                "threat_type": "payload_delivery",
                "malware": "js.clearfake",
                "malware_alias": None,
                "malware_printable": "ClearFake",
                "first_seen_utc": "2026-11-30 01:30:00",
                "last_seen_utc": None,
                "confidence_level": 100,
                "is_compromised": True,
                "reference": None,
                "tags": None,
                "anonymous": "1",
                "reporter": "anonymous",
            }
        ],
        "1891277": [
            {
                "ioc_value": "phish.evil.example",
                "ioc_type": "domain",
                "threat_type": "payload_delivery",
                "malware": "js.clearfake",
                "malware_alias": None,
                "malware_printable": "ClearFake",
                "first_seen_utc": "2026-11-30 01:21:00",
                "last_seen_utc": None,
                "confidence_level": 50,
                "is_compromised": False,
                "reference": "https://infosec.example/clearfake",
                "tags": "ClearFake",
                "anonymous": "0",
                "reporter": "xscon",
            }
        ],
    },
    indent=2,
).encode()

# ThreatFox's CSV export (https://threatfox.abuse.ch/export/csv/recent/): a `#` banner with the header as a
# comment, every field quoted, ", " between fields, commas inside the tags field, CRLF line ends.
THREATFOX_CSV = (
    b"################################################################\r\n"
    b"# ThreatFox IOCs: recent additions - CSV format                #\r\n"
    b"# Last updated: 2026-11-30 02:19:04 UTC                        #\r\n"
    b"#                                                              #\r\n"
    b"# Terms Of Use: https://threatfox.abuse.ch/faq/#tos            #\r\n"
    b"# For questions please contact threatfox [at] abuse.ch         #\r\n"
    b"################################################################\r\n"
    b"#\r\n"
    b'# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias",'
    b'"malware_printable","last_seen_utc","confidence_level","is_compromised","reference","tags","anonymous",'
    b'"reporter"\r\n'
    b'"2026-11-30 01:39:33", "1891291", "c2.evil.example", "domain", "botnet_cc", "win.cobalt_strike", '
    b'"Agentemis,BEACON,CobaltStrike", "Cobalt Strike", "", "100", "False", "None", "CobaltStrike", "0", '
    b'"abuse_ch"\r\n'
    b'"2026-11-30 01:34:48", "1891289", "198.51.100.36:5555", "ip:port", "botnet_cc", "win.cobalt_strike", '
    b'"None", "Cobalt Strike", "2026-11-30 02:46:23", "75", "False", "None", "CobaltStrike,drb-ra", "0", '
    b'"drb_ra"\r\n'
    b'"2026-11-30 01:30:00", "1891280", "https://dl.evil.example/stage2.bin", "url", "payload_delivery", '
    b'"js.clearfake", "None", "ClearFake", "", "100", "True", "None", "None", "1", "anonymous"\r\n'
    b"#\r\n"
    b"# Number of entries: 3\r\n"
)


def _misp_attribute(number: int, kind: str, value: str, **fields) -> dict:
    attribute = {
        "id": str(4100 + number),
        "type": kind,
        "category": "Network activity",
        "to_ids": True,
        "uuid": f"5f1c0b2e-0000-4000-8000-{number:012d}",
        "event_id": "1234",
        "distribution": "5",
        "timestamp": "1764460800",
        "comment": "",
        "sharing_group_id": "0",
        "deleted": False,
        "disable_correlation": False,
        "object_id": "0",
        "object_relation": None,
        "first_seen": None,
        "last_seen": None,
        "value": value,
        "Galaxy": [],
        "ShadowAttribute": [],
    }
    attribute.update(fields)
    return attribute


# A MISP event as its REST search returns it (`POST /events/restSearch` with `returnFormat: json`): the
# event's own attributes, composite ones among them, and an object's attributes.
MISP_EVENTS = json.dumps(
    {
        "response": [
            {
                "Event": {
                    "id": "1234",
                    "orgc_id": "1",
                    "org_id": "1",
                    "date": "2026-11-30",
                    "threat_level_id": "2",
                    "info": "Cobalt Strike C2 infrastructure",
                    "published": True,
                    "uuid": "5f1c0b2e-1234-4000-8000-000000000000",
                    "attribute_count": "9",
                    "analysis": "2",
                    "timestamp": "1764460800",
                    "distribution": "1",
                    "Org": {"id": "1", "name": "ORGNAME", "uuid": "5f1c0b2e-aaaa-4000-8000-000000000000"},
                    "Orgc": {"id": "1", "name": "ORGNAME", "uuid": "5f1c0b2e-aaaa-4000-8000-000000000000"},
                    "Attribute": [
                        _misp_attribute(1, "domain|ip", "c2.evil.example|198.51.100.23"),
                        _misp_attribute(2, "ip-dst|port", "203.0.113.9|443"),
                        _misp_attribute(3, "hostname|port", "beacon.evil.example|8443"),
                        _misp_attribute(4, "sha256", "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f",
                                        category="Payload delivery"),
                        _misp_attribute(5, "domain", "gone.evil.example", deleted=True),
                        _misp_attribute(6, "url", "https://dl.evil.example/stage2.bin"),
                        _misp_attribute(7, "ip-src", "2001:db8::66"),
                        _misp_attribute(8, "domain|ip", "broken.evil.example"),
                    ],
                    "Object": [
                        {
                            "id": "77",
                            "name": "domain-ip",
                            "meta-category": "network",
                            "description": "A domain and IP address seen as a tuple in a specific time frame.",
                            "template_uuid": "43b3b146-77eb-4931-b4cc-b66c60f28734",
                            "template_version": "9",
                            "event_id": "1234",
                            "uuid": "5f1c0b2e-7777-4000-8000-000000000000",
                            "timestamp": "1764460800",
                            "distribution": "5",
                            "sharing_group_id": "0",
                            "comment": "",
                            "deleted": False,
                            "first_seen": None,
                            "last_seen": None,
                            "ObjectReference": [],
                            "Attribute": [
                                _misp_attribute(9, "domain", "obj.evil.example", object_id="77",
                                                object_relation="domain"),
                                _misp_attribute(10, "ip-dst", "198.51.100.24", object_id="77", object_relation="ip"),
                            ],
                        }
                    ],
                    "Tag": [{"id": "1", "name": "tlp:green", "colour": "#339900", "exportable": True}],
                }
            }
        ]
    },
    indent=4,
).encode()


def _indicator(number: int, pattern: str, **fields) -> dict:
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--8e2e2d2b-17d4-4cbf-938f-{number:012d}",
        "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
        "created": "2026-11-01T10:00:00.000Z",
        "modified": "2026-11-01T10:00:00.000Z",
        "name": f"Indicator {number}",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": "2026-11-01T10:00:00Z",
    }
    indicator.update(fields)
    return indicator


# A STIX 2.1 bundle as a CTI sharing platform exports it: an identity, indicators of every kind the feed reads
# and some it cannot, a malware object and a relationship.
STIX_BUNDLE = json.dumps(
    {
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": [
            {
                "type": "identity",
                "spec_version": "2.1",
                "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
                "created": "2026-01-01T00:00:00.000Z",
                "modified": "2026-01-01T00:00:00.000Z",
                "name": "Example CERT",
                "identity_class": "organization",
            },
            _indicator(1, "[domain-name:value = 'c2.evil.example']"),
            _indicator(2, "[ipv4-addr:value = '198.51.100.7' OR ipv4-addr:value = '203.0.113.0/24']"),
            _indicator(3, "[url:value = 'http://dl.evil.example:8080/payload.exe']"),
            _indicator(4, "[ipv6-addr:value = '2001:db8::bad']"),
            _indicator(5, "[domain-name:value = 'expired.evil.example']", valid_until="2026-11-15T00:00:00Z"),
            _indicator(6, "[domain-name:value = 'revoked.evil.example']", revoked=True),
            _indicator(7, "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']"),
            _indicator(8, "[domain-name:value = 'a.evil.example'] AND [ipv4-addr:value = '198.51.100.8']"),
            _indicator(9, "[domain-name:value = 'one.evil.example'] OR [domain-name:value = 'two.evil.example']",
                       valid_until="2027-06-01T00:00:00Z"),
            _indicator(10, 'alert tcp any any -> any 443 (msg:"beacon"; sid:1000001;)', pattern_type="snort"),
            {
                "type": "malware",
                "spec_version": "2.1",
                "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
                "created": "2026-11-01T10:00:00.000Z",
                "modified": "2026-11-01T10:00:00.000Z",
                "name": "Cobalt Strike",
                "is_family": True,
            },
            {
                "type": "relationship",
                "spec_version": "2.1",
                "id": "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad",
                "created": "2026-11-01T10:00:00.000Z",
                "modified": "2026-11-01T10:00:00.000Z",
                "relationship_type": "indicates",
                "source_ref": "indicator--8e2e2d2b-17d4-4cbf-938f-000000000001",
                "target_ref": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
            },
        ],
    },
    indent=4,
).encode()
