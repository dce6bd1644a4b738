"""ext2: the second extended filesystem, read and written in the Sentry.

Why: programs (and the LTP's filesystem tests) make a filesystem with the
real ``mkfs.ext2`` on a sandbox block device (the ramdisk, a loop device
over a sandbox file) and mount it.  The image lives in Sentry memory and is
parsed here: nothing of it ever reaches a host filesystem or host device.

Modules, one job each:

* :mod:`layout`: the superblock and group descriptors (parse, validate,
  feature checks, write back the free counts);
* :mod:`alloc`: block and inode bitmaps (allocate, free);
* :mod:`blockmap`: a file's logical-to-physical block map (direct,
  indirect, double and triple indirect), read/write/truncate of its bytes;
* :mod:`dirent`: linear directory blocks (lookup, insert, remove, list);
* :mod:`inode`: on-disk inodes as Sentry :class:`~sentry.vfs.inode.Inode`s;
* :mod:`fs`: the filesystem object the mount syscall makes.

Not supported, refused at mount time with EINVAL rather than misread: any
incompat feature but ``filetype`` (extents, 64bit, flex_bg, inline data,
journal recovery needed...); writable mounts of images with ro_compat
features beyond ``sparse_super`` and ``large_file`` (those mount read-only
only).  An ext3 journal is never replayed or written (a clean ext3 image
mounts as ext2, which Linux's ext2 driver does too).
"""
