#!/bin/sh
# A database workload: a MariaDB server (InnoDB, 64 MiB buffer pool in private anonymous memory)
# under sysbench's OLTP read/write mix (point selects, range selects/sums/order by/distinct,
# index and non-index updates, delete+insert by primary key; 2 client threads) on 4 tables of
# 150k rows (about 160 MiB on disk, so the buffer pool also evicts and reads pages).
#
# Creates a fresh data directory under DIR (default /tmp/traces-mdb), starts mariadbd there
# (pid in DIR/mysqld.pid, socket DIR/mysqld.sock), loads the tables, then runs the mix for
# SECONDS (default 600) and stops the server. Needs mariadb-server and sysbench (Debian 12:
# apt-get install -y mariadb-server sysbench); run as root or as the owner of DIR.
#
# Run:  sh scripts/workloads/mariadb_oltp.sh [DIR] [SECONDS]
#
# The server is started with 1 MiB default thread stacks (ulimit -s) and MALLOC_ARENA_MAX=2, and
# the MyISAM/Aria caches are shrunk to 8 MiB, so its writable private memory is about 160 MiB
# instead of about 450 MiB of mostly untouched reservations.
set -eu
DIR=${1:-/tmp/traces-mdb}
SECONDS_RUN=${2:-600}
rm -rf "$DIR/data"
mkdir -p "$DIR"
cat > "$DIR/my.cnf" <<EOF
[mysqld]
datadir=$DIR/data
socket=$DIR/mysqld.sock
pid-file=$DIR/mysqld.pid
skip-networking
user=root
skip-log-bin
performance_schema=OFF
innodb_buffer_pool_size=64M
innodb_log_file_size=64M
innodb_flush_log_at_trx_commit=2
innodb_buffer_pool_load_at_startup=OFF
innodb_buffer_pool_dump_at_shutdown=OFF
key_buffer_size=8M
aria_pagecache_buffer_size=8M
max_connections=20
EOF
mariadb-install-db --no-defaults --datadir="$DIR/data" --user=root \
    --auth-root-authentication-method=normal > "$DIR/install.log" 2>&1
(ulimit -s 1024; MALLOC_ARENA_MAX=2 exec mariadbd --defaults-file="$DIR/my.cnf" > "$DIR/mysqld.log" 2>&1) &
i=0
until mariadb --socket="$DIR/mysqld.sock" -uroot -e "select 1" > /dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 60 ] || { echo "mariadbd did not start" >&2; exit 1; }; sleep 1
done
mariadb --socket="$DIR/mysqld.sock" -uroot -e "create database sbtest"
SB="--db-driver=mysql --mysql-socket=$DIR/mysqld.sock --mysql-user=root --mysql-db=sbtest --tables=4 --table-size=150000"
sysbench oltp_read_write $SB prepare > "$DIR/prepare.log"
echo "prepared; mariadbd pid $(cat "$DIR/mysqld.pid")"
sysbench oltp_read_write $SB --threads=2 --time="$SECONDS_RUN" --report-interval=10 run || true
kill "$(cat "$DIR/mysqld.pid")"
