# cutover's job supervisor: runs one script and ends it, with every process
# it started, when nobody waits for its result any more.
#
#   perl -e PROGRAM -- [-l JOBS_FILE] [-t SECONDS] SCRIPT
#
# runs `sh -c SCRIPT` in a session of its own (with `setsid`, else a
# process group of its own), stdin, stdout and stderr passed through, and
# exits with its exit status (128 + the signal if a signal ended it). What
# the job leaves running in its session when it exits is ended too: a
# step that starts a lasting process hands it to a service manager, or
# detaches it as a daemon does (setsid and a double fork). The job is
# ended when
#   - the reader of our stdout or stderr is gone: sshd closes the channel's
#     pipe when cutover's side of it goes away (Ctrl-C, a time limit,
#     cutover killed, the connection lost). On Linux a pipe's write end is
#     then "readable" to select (POLLERR), and never before; otherwise
#     (BSD, macOS, a socket) fd 1 and 2 are polled for POLLERR or POLLHUP;
#   - this program gets SIGTERM, SIGHUP, SIGINT or SIGPIPE;
#   - with -t, SECONDS have passed (exit 124): the backstop when the
#     connection is cut silently and sshd has not noticed yet.
# Ending it: SIGTERM (and SIGCONT) to every process of its session, of its
# process group, and below it, found in /proc or with ps (GNU timeout moves
# its command to a group of its own; an orphan keeps the session); SIGKILL
# to what is left after GRACE s.
# With -l, a shared flock on JOBS_FILE is held while the job runs (not
# inherited by it): a clean-up waits for an exclusive one.
#
# Core perl only (perl-base), and on Linux no module at all: it starts for
# every script. No single quote characters outside comments (which are not
# sent): the program travels inside single quotes.

use strict;
use warnings;

$0 = "cutover-supervise";
my $GRACE = 5;
my $WNOHANG = 1;    # the same on Linux, macOS and the BSDs
my $LOCK_SH = 1;
my $PIPES = $^O eq "linux" && -p STDOUT && -p STDERR;
require IO unless $PIPES;    # IO::Poll::_poll and its constants
sub fail { print STDERR "cutover-supervise: @_\n"; exit 125 }

my ($jobs, $deadline) = ("", 0);
while (@ARGV && $ARGV[0] =~ /^-/) {
    my $opt = shift @ARGV;
    last if $opt eq "--";
    if ($opt eq "-l") { $jobs = shift @ARGV // "" }
    elsif ($opt eq "-t") { $deadline = shift @ARGV // "" }
    else { fail("unknown option $opt") }
}
$deadline =~ /^[0-9]+$/ or fail("-t needs whole seconds");
@ARGV == 1 or fail("usage: [-l JOBS_FILE] [-t SECONDS] SCRIPT");
my $script = shift @ARGV;

# Signals set a flag and interrupt the sleep below.
my $stop = "";
# Each handler also writes to a pipe the waits watch: a signal that comes
# just before a wait still ends it.
pipe(my $wake, my $waker) or fail("pipe: $!");
sub woken { syswrite($waker, "x") }
my %SIGNO = (HUP => 1, INT => 2, PIPE => 13, TERM => 15, ALRM => 14);
$SIG{$_} = sub { $stop ||= $_[0]; woken() } for keys %SIGNO;
$SIG{CHLD} = \&woken;

# Waits at most $_[0] s, or until a signal; whether the reader of fd 1 or
# fd 2 went away.
sub reader_gone_within {
    my ($wait) = @_;
    if ($PIPES) {
        my $watch = "";
        vec($watch, $_, 1) = 1 for (1, 2, fileno($wake));
        return 0 if select(my $seen = $watch, undef, undef, $wait) <= 0;
        sysread($wake, my $drained, 64) if vec($seen, fileno($wake), 1);
        return vec($seen, 1, 1) || vec($seen, 2, 1);
    }
    for my $fd (1, 2) {
        my ($f, $ev) = ($fd, IO::Poll::POLLOUT());
        my $gone = IO::Poll::POLLERR() | IO::Poll::POLLHUP();
        return 1 if IO::Poll::_poll(0, $f, $ev) > 0 && ($ev & $gone);
    }
    nap($wait);
    return 0;
}
sub nap {
    my $watch = "";
    vec($watch, fileno($wake), 1) = 1;
    sysread($wake, my $drained, 64) if select(my $seen = $watch, undef, undef, $_[0]) > 0;
}

# The run's jobs lock, shared; perl opens it close-on-exec (fd > $^F).
if ($jobs ne "") {
    open(my $lock, ">>", $jobs) or fail("open $jobs: $!");
    flock($lock, $LOCK_SH) or fail("flock $jobs: $!");
    our $held = $lock;
}
# Started after cutover stopped waiting (its abort may be running): nothing
# to do. Checked after taking the lock, so an abort either waits for this
# job or finds it never started.
exit 129 if reader_gone_within(0);

# As a subreaper (Linux), every orphan of the job becomes our child: when
# none is left after the job exits, nothing of it runs, and /proc need not
# be read. prctl(PR_SET_CHILD_SUBREAPER) by its number on the two common
# architectures; elsewhere /proc is always read.
my %PRCTL = (x86_64 => 157, aarch64 => 167);
my $subreaper = 0;
if (open(my $arch, "<", "/proc/sys/kernel/arch")) {
    my $name = <$arch> // "";
    chomp $name;
    $subreaper = syscall($PRCTL{$name}, 36, 1) == 0 if $PRCTL{$name};
}

my $pid = fork();
defined $pid or fail("fork: $!");
if ($pid == 0) {
    # Not a group leader, so setsid(1) calls setsid(2) and execs, no fork.
    my ($setsid) = grep { -x } ("/usr/bin/setsid", "/bin/setsid");
    no warnings "exec";
    exec { $setsid } "setsid", "/bin/sh", "-c", $script if $setsid;
    setpgrp(0, 0);
    exec { "/bin/sh" } "sh", "-c", $script;
    print STDERR "cutover-supervise: exec /bin/sh: $!\n";
    exit 127;
}
open(STDIN, "<", "/dev/null");    # the job alone reads stdin
alarm($deadline) if $deadline;

my ($status, $reason);
sub reap { $status = $? if !defined $status && waitpid($pid, $WNOHANG) == $pid }
$reason = "";
until (defined $status) {
    reap();
    last if defined $status;
    $reason = $stop || (reader_gone_within(0.25) ? "gone" : "");
    reap() if $reason eq "gone";    # it may have ended meanwhile
    last if $reason || defined $status;
}
$reason = "" if defined $status;
alarm(0);
# The job ended, or must: end whatever of it is left.

# Every live process of the job: its group, and every process below it
# with the group of each (found again on each pass: processes come and go;
# zombies are left to their parents).
sub members {
    my (%parent, %group, %session);
    if (opendir(my $proc, "/proc")) {
        for my $p (grep { /^[0-9]+$/ } readdir $proc) {
            open(my $fh, "<", "/proc/$p/stat") or next;
            my $stat = <$fh> // next;
            my @f = split / /, substr($stat, rindex($stat, ")") + 2);
            ($parent{$p}, $group{$p}, $session{$p}) = ($f[1], $f[2], $f[3]) unless $f[0] eq "Z";
        }
    } elsif (open(my $ps, "-|", "ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "pgid=", "-o", "stat=")) {
        while (<$ps>) {
            my ($p, $pp, $g, $st) = split;
            ($parent{$p}, $group{$p}) = ($pp, $g) if defined $st && $st !~ /^Z/;
        }
    }
    my %in = ();
    my %groups = ($pid => 1);
    my $more = 1;
    while ($more) {
        $more = 0;
        for my $p (keys %parent) {
            next if $in{$p} || $p == $$;
            my $ours = $p == $pid || ($session{$p} // 0) == $pid;
            if ($ours || $in{$parent{$p}} || $groups{$group{$p}}) {
                $in{$p} = 1;
                $groups{$group{$p}} = 1;
                $more = 1;
            }
        }
    }
    return (keys %in);
}
sub signal_job {
    my ($sig) = @_;
    my @all = members();
    kill($sig, @all) if @all;
    kill("CONT", @all) if @all && $sig eq "TERM";    # a stopped process acts on it once continued
    return scalar @all;
}

# Whether any process of the job may be left: without a child left
# (orphans included, as a subreaper), none is.
sub any_left {
    1 while waitpid(-1, $WNOHANG) > 0;
    return !$subreaper || waitpid(-1, $WNOHANG) == 0;
}

my $left = any_left() ? signal_job("TERM") : 0;
my $until = time + $GRACE;
while ($left && time < $until) {
    nap(0.1);
    reap();
    $left = any_left() ? members() : 0;
}
signal_job("KILL") if $left;
reap();
1 while waitpid(-1, $WNOHANG) > 0;
exit($status & 127 ? 128 + ($status & 127) : $status >> 8) if $reason eq "";
exit($reason eq "gone" ? 129 : $reason eq "ALRM" ? 124 : 128 + $SIGNO{$reason});
