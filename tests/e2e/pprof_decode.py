#!/usr/bin/env python3
"""pprof_decode.py PROFILE [SAMPLE_TYPE] - read a profile.proto with nothing but Python.

An independent check of gorc's hand-written encoder: parses every field of the Profile
message by hand (varints, length-delimited fields; gzip if the file is compressed), checks that
string 0 is "", that every sample's location ids and every location's function ids exist,
that the first sample type is SAMPLE_TYPE when given, and prints the function names of the
locations, one per line, then "samples N total V" (V: the sum of the first value).
Exit status 1 with a message on any inconsistency.
"""
import gzip
import sys


def varint(b, i):
    v = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
            yield num, v
        elif wt == 2:
            n, i = varint(b, i)
            if i + n > len(b):
                raise ValueError("field %d overruns its message" % num)
            yield num, b[i:i + n]
            i += n
        else:
            raise ValueError("unexpected wire type %d" % wt)


def packed(v):
    if isinstance(v, int):
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def main():
    data = open(sys.argv[1], "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    strings, types, samples, locs, funcs = [], [], [], {}, {}
    for num, v in fields(data):
        if num == 1:
            t = dict(fields(v))
            types.append((t.get(1, 0), t.get(2, 0)))
        elif num == 2:
            s = {"locs": [], "vals": []}
            for n2, v2 in fields(v):
                if n2 == 1:
                    s["locs"] += packed(v2)
                elif n2 == 2:
                    s["vals"] += packed(v2)
            samples.append(s)
        elif num == 4:
            lid, lines = 0, []
            for n2, v2 in fields(v):
                if n2 == 1:
                    lid = v2
                elif n2 == 4:
                    lines.append(dict(fields(v2)).get(1, 0))
            locs[lid] = lines
        elif num == 5:
            f = dict(fields(v))
            funcs[f.get(1, 0)] = f.get(2, 0)
        elif num == 6:
            strings.append(v.decode())
    if not strings or strings[0] != "":
        sys.exit("string table must start with the empty string")
    for i, (t, u) in enumerate(types):
        if t >= len(strings) or u >= len(strings):
            sys.exit("sample type %d names a missing string" % i)
    want = sys.argv[2] if len(sys.argv) > 2 else None
    if want and (not types or strings[types[0][0]] != want):
        sys.exit("first sample type is not %s" % want)
    for s in samples:
        for l in s["locs"]:
            if l not in locs:
                sys.exit("sample names missing location %d" % l)
        if len(s["vals"]) != len(types):
            sys.exit("sample has %d values for %d types" % (len(s["vals"]), len(types)))
    names = set()
    for lines in locs.values():
        for fid in lines:
            if fid not in funcs:
                sys.exit("location names missing function %d" % fid)
            names.add(strings[funcs[fid]])
    for n in sorted(names):
        print(n)
    print("samples %d total %d" % (len(samples), sum(s["vals"][0] for s in samples if s["vals"])))


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit("malformed profile: %s" % e)
