# inotifywait (inotify-tools) on a directory being written: it is watching once
# a probe file shows up; a marker then fences the probe events off, and the
# events of the real work are printed. Waits poll for a line, bounded.
d=$(mktemp -d)
inotifywait -q -m -e create,modify,close_write,delete --format '%e %f' "$d" >> "$d.log" 2>&1 &
w=$!
i=0
while [ ! -s "$d.log" ] && [ $i -lt 500 ]; do touch "$d/probe"; rm -f "$d/probe"; i=$((i+1)); done
touch "$d/marker"; rm "$d/marker"
i=0
while ! grep -q "DELETE marker" "$d.log" && [ $i -lt 1000 ]; do i=$((i+1)); sleep 0.01; done
: > "$d.log"
echo hello > "$d/a"; echo more >> "$d/a"; rm "$d/a"
i=0
while ! grep -q "DELETE a" "$d.log" && [ $i -lt 1000 ]; do i=$((i+1)); sleep 0.01; done
kill $w; wait $w 2>/dev/null
cat "$d.log"; rm -rf "$d" "$d.log"
