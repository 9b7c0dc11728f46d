# bash under Tandem: functions, recursion, local variables, arrays, subshells, pipes,
# command substitution, arithmetic, traps, here-documents, case, parameter expansion.
set -u
fib() {
  local n=$1
  if (( n < 2 )); then echo "$n"; return; fi
  echo $(( $(fib $((n - 1))) + $(fib $((n - 2))) ))
}
echo "fib 5 = $(fib 5)"

declare -A count
for w in apple pear apple fig pear apple; do count[$w]=$(( ${count[$w]:-0} + 1 )); done
for k in $(printf '%s\n' "${!count[@]}" | sort); do echo "$k=${count[$k]}"; done

arr=(zero one two three)
echo "${#arr[@]} ${arr[2]} ${arr[*]:1:2} ${arr[-1]^^}"
s="Hello, World"
echo "${s/World/Tandem} ${s,,} ${#s} ${s:7} ${s%%,*}"

x=outer
( x=inner; echo "in subshell: $x"; exit 3 ); echo "subshell status $? x=$x"

total=0
while read -r a b; do total=$(( total + a * b )); done <<'DATA'
3 4
5 6
7 8
DATA
echo "sum of products: $total"

printf '%s\n' c a b a c c | sort | uniq -c | sort -rn | while read -r n w; do echo "$w:$n"; done
yes | head -n 2; echo "pipe status: ${PIPESTATUS[*]}"

trap 'echo "trap EXIT in subshell"' EXIT
( trap 'echo "caught USR1"' USR1; kill -USR1 $BASHPID; echo "after signal" )
trap - EXIT
f() { trap 'echo "RETURN from f"' RETURN; echo "in f"; }
f
trap 'echo "ERR trapped at line $LINENO"' ERR
false
trap - ERR

for i in 1 2 3 4 5 6; do
  case $(( i % 3 )) in
    0) echo "$i fizz" ;;
    1) continue ;;
    *) echo "$i other" ;;
  esac
done
printf '%05d|%-6s|%x|%.3f\n' 42 ab 255 3.14159
echo $(( (1 << 40) + 7 ** 3 - 100 / 7 % 4 )) $(( 0x7fffffffffffffff + 1 ))
cd /tmp && echo "pwd ok" || echo "no /tmp"
exit 7
