"""The part of a response an event shows, cut so that decoding it in full costs a bounded time.

The event's `answers` come from dnslib, which decodes every record of a message and follows compression
pointers with a weaker rule than the scanner's (a pointer must only point before itself): a long chain of
pointers, named by thousands of records, costs it seconds. An event shows at most its first answers, so
dnslib is handed only the header, the question and those answers, with the other counts set to zero, and
only once every name in them that dnslib will decode has passed the scanner's strict walk (`read_name`:
pointers before every position visited, at most 255 octets, a bound on jumps). Compression pointers only
point backwards, so the cut-off message decodes exactly as the same records of the whole one.
"""

from __future__ import annotations

from agent.core.scanner import Damaged, read_name

TYPE_SOA, TYPE_MX, TYPE_RP, TYPE_NAPTR, TYPE_RRSIG, TYPE_NSEC = 6, 15, 17, 35, 46, 47

# Where dnslib finds names in the rdata of the types whose rdata it decodes into names (CNAME, NS, PTR and
# DNAME at 0; MX and SRV after their numbers; the signer of an RRSIG after its 18 fixed octets), beside the
# types walked specially below: SOA and RP hold two names, NAPTR's follows three character-strings.
_RDATA_NAME_AT = {2: 0, 5: 0, 12: 0, 39: 0, TYPE_NSEC: 0, TYPE_MX: 2, 33: 6, TYPE_RRSIG: 18}


def displayable_prefix(message: bytes, max_answers: int) -> bytes | None:
    """`message` cut after its first `max_answers` answers, or None when the question or one of them is damaged."""
    try:
        qdcount = message[4] << 8 | message[5]
        ancount = min(message[6] << 8 | message[7], max_answers)
        offset = 12
        for _ in range(qdcount):
            _, offset = read_name(message, offset)
            offset += 4
        for _ in range(ancount):
            _, offset = read_name(message, offset)
            rtype = message[offset] << 8 | message[offset + 1]
            rdata = offset + 10
            offset = rdata + (message[offset + 8] << 8 | message[offset + 9])
            _check_rdata_names(message, rtype, rdata, offset)
        if offset > len(message):
            return None
    except (IndexError, Damaged):
        return None
    header = message[:6] + bytes((ancount >> 8, ancount & 0xFF, 0, 0, 0, 0))
    return header + message[12:offset]


def _check_rdata_names(message: bytes, rtype: int, rdata: int, end: int) -> None:
    """Walk every name dnslib will decode in this record's rdata; `Damaged` when one is bad or overruns it."""
    at = _RDATA_NAME_AT.get(rtype)
    if at is not None:
        names, position = 1, rdata + at
    elif rtype == TYPE_SOA or rtype == TYPE_RP:
        names, position = 2, rdata
    elif rtype == TYPE_NAPTR:
        names, position = 1, rdata + 4
        for _ in range(3):  # flags, services, regexp
            position += message[position] + 1
    else:
        return
    for _ in range(names):
        _, position = read_name(message, position)
    if position > end:
        raise Damaged("name overruns its record")
