# sed under Tandem: comments dropped, fields reordered with -E groups, hold space joins the
# names of each group, a range, y///, line numbers with =, and appending.
/^#/d
s/^([a-z]+):([a-z]+):([0-9.]+)$/\2 (\1) = \3/
/^short/,$ {
  s/short/SHORT/
  a\
-- appended after the range
}
y/abc/ABC/
/(red)/ {
  h
  s/ .*//
  x
}
$ {
  x
  s/^/last held: /
  G
}
