#!/bin/sh
# The command-line tools' side of the compatibility matrix (tests/compat.rs): one line per
# feature, `NAME ok` or `NAME exit N` (the status of the step that failed; 126 is the shell's
# "found but can't be executed"). Works in a fresh directory under $TMPDIR or /tmp.
set -u
dir=$(mktemp -d) || { echo "mktemp exit $?"; exit 1; }
cd "$dir" || exit 1
export HOME="$dir" GIT_CONFIG_NOSYSTEM=1

feature() {
    name=$1
    shift
    out=$("$@" 2>&1)
    status=$?
    if [ "$status" -eq 0 ]; then
        echo "$name ok"
    else
        echo "$name exit $status"
        printf '%s\n' "$out" | sed 's/^/  | /' >&2
    fi
}

coreutils() {
    seq 1 1000 | sort -rn | head -n 3 | tr '\n' ' ' | grep -qx '1000 999 998 ' &&
        printf 'hello\n' | sha256sum | cut -c1-8 | grep -qx 5891b5b5 &&
        ls -la / >/dev/null && date >/dev/null && id >/dev/null
}
perl_() {
    perl -e 'pipe(my $r, my $w) or die; my $pid = fork() // die;
        if (!$pid) { close $r; print $w "hi\n"; exit 0 } close $w; my $l = <$r>; waitpid($pid, 0);
        open(my $f, ">", "p.txt") or die; print $f $l; close $f; exit($l eq "hi\n" ? 0 : 1)'
}
gcc_make() {
    printf '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n' >hello.c &&
        printf 'hello: hello.c\n\t$(CC) -O1 -o $@ $<\n' >Makefile &&
        make -s CC=gcc >/dev/null && ./hello >out && grep -qx hello out
}
git_() {
    git init -q repo && cd repo && echo a >a && git add a &&
        git -c user.name=t -c user.email=t@example.invalid commit -qm one &&
        git log --oneline | grep -q one
    status=$?
    cd "$dir"
    return $status
}
tar_gzip() {
    mkdir -p t/d && echo hi >t/d/f && tar -czf t.tgz t && rm -r t && tar -xzf t.tgz &&
        grep -qx hi t/d/f && gzip -t t.tgz
}
sqlite() {
    sqlite3 s.db 'create table t(x); insert into t values (1),(2),(3);' &&
        sqlite3 s.db 'select sum(x) from t;' | grep -qx 6
}
pipeline() {
    sh -c 'i=0; while [ $i -lt 200 ]; do echo $i; i=$((i+1)); done' | awk '{s+=$1} END {print s}' |
        grep -qx 19900
}

feature coreutils coreutils
feature shell-pipeline pipeline
feature perl perl_
feature gcc-make gcc_make
feature git git_
feature tar-gzip tar_gzip
feature sqlite3 sqlite
cd /
rm -rf "$dir"
