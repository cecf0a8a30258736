#!/usr/bin/env python3
"""layer-diffid.py DIR PATH [UID GID]: print the diff_id of the
immutable-layer-v1 layer of directory DIR placed at PATH in an image, with
Python's tarfile only. Covers names and link targets that fit USTAR (ASCII,
up to 100 bytes, or 256 split at a "/"); the digest spec guide describes
the PAX headers of the others."""
import hashlib, os, sys, tarfile

def header(name, kind, mode, uid, gid, size=0, link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.size, ti.linkname = kind, mode, uid, gid, size, link
    ti.mtime, ti.uname, ti.gname = 0, "", ""
    b = bytearray(ti.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict"))
    b[329:345] = b"0000000\0" * 2  # devmajor, devminor: octal zero, as Go writes them
    b[148:156] = b" " * 8
    b[148:156] = b"%06o\0 " % sum(b)
    return bytes(b)

def main():
    root, path = sys.argv[1], sys.argv[2]
    uid, gid = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (0, 0)
    base = path.strip("/")
    entries = []
    for d, dirs, files in os.walk(root):
        for n in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            entries.append(os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/"))
    entries.sort(key=lambda p: p.encode())
    out, done = hashlib.sha256(), set()

    def dirs_of(name, owned_from):
        parts = name.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d in done:
                continue
            done.add(d)
            if len(d) >= owned_from:  # none above the layer's path
                out.update(header(d + "/", tarfile.DIRTYPE, 0o755, uid, gid))

    if base:
        dirs_of(base + "/x", len(base))
    for rel in entries:
        name = base + "/" + rel if base else rel
        dirs_of(name, len(base))
        p = os.path.join(root, rel)
        if os.path.islink(p):
            out.update(header(name, tarfile.SYMTYPE, 0o777, uid, gid, link=os.readlink(p)))
            continue
        data = open(p, "rb").read()
        mode = 0o755 if os.lstat(p).st_mode & 0o100 else 0o644
        out.update(header(name, tarfile.REGTYPE, mode, uid, gid, size=len(data)))
        out.update(data + b"\0" * (-len(data) % 512))
    out.update(b"\0" * 1024)
    print("sha256:" + out.hexdigest())

main()
