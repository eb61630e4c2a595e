# cutover job supervisor. Runs a shell script in its own process group and
# kills that whole group when nobody waits for the result any more.
#
# Usage: perl -e PROGRAM -- [-t SECS] [-g SECS] [-l LOCKFILE] [-k] SCRIPT [NAME [ARG...]]
#   runs: sh -c SCRIPT [NAME [ARG...]]   (stdin, stdout, stderr inherited)
#   -t SECS      deadline: terminate the job after SECS seconds, exit 124
#   -g SECS      grace between SIGTERM and SIGKILL (default 5)
#   -l LOCKFILE  hold a shared flock on LOCKFILE while the job runs
#   -k           also terminate what is left of the group after the script exits
#
# The job is terminated (SIGTERM + SIGCONT to the group, SIGKILL to the group
# after the grace period) when
#   - the reader of our stdout or stderr went away: a pipe write end then
#     polls POLLERR (Linux) or POLLHUP (BSD, macOS), a socket POLLHUP;
#     sshd closes the read end of stdout when the channel is closed, when it
#     receives eow@openssh.com (mux client gone) and when the connection dies,
#   - the deadline passed (exit 124),
#   - we get SIGTERM, SIGHUP, SIGINT or SIGPIPE (exit 128 + signal number).
# After "reader gone" the exit status is 129; nobody is there to read it.
# Otherwise the exit status is that of sh (128 + signal if it was killed).
#
# Only modules from perl-base are used. IO/Poll.pm is not in perl-base, but
# IO.so (loaded by IO::Handle) defines IO::Poll::_poll and the POLL constants.
# This program must not contain single quote characters.

use strict;
use warnings;
use POSIX ();
use Fcntl qw(:flock F_SETFD FD_CLOEXEC O_RDONLY O_CREAT);
use IO::Handle ();

my $ME = "cutover-supervise";
sub fail { print STDERR "$ME: @_\n"; exit 125 }

# --- arguments ------------------------------------------------------------
my ($deadline, $grace, $lockfile, $kill_rest) = (0, 5, "", 0);
while (@ARGV && $ARGV[0] =~ /^-/) {
    my $opt = shift @ARGV;
    last if $opt eq "--";
    if    ($opt eq "-t") { $deadline = shift @ARGV // "" }
    elsif ($opt eq "-g") { $grace    = shift @ARGV // "" }
    elsif ($opt eq "-l") { $lockfile = shift @ARGV // "" }
    elsif ($opt eq "-k") { $kill_rest = 1 }
    else { fail("unknown option $opt") }
}
$deadline =~ /^[0-9]+$/ or fail("-t needs whole seconds");
$grace    =~ /^[0-9]+$/ && $grace > 0 or fail("-g needs whole seconds > 0");
@ARGV or fail("no script given");
my $script = shift @ARGV;
my @sh_args = @ARGV ? @ARGV : ("sh");

# --- signals ---------------------------------------------------------------
# Perl runs these handlers between operations ("safe signals"); each signal
# also interrupts the sleeping select() below, so we react at once.
my ($stop, $alarm) = ("", 0);
my %SIGNO = (HUP => 1, INT => 2, PIPE => 13, TERM => 15);
for my $name (keys %SIGNO) {
    $SIG{$name} = sub { $stop ||= $name };
}
$SIG{ALRM} = sub { $alarm = 1 };
$SIG{CHLD} = sub { };    # only to wake up select()

# True when the reader of fd 1 or fd 2 is gone. POLLOUT is requested because
# macOS reports nothing for a pipe unless some event is asked for.
my $GONE = IO::Poll::POLLERR() | IO::Poll::POLLHUP();
sub reader_gone {
    for my $fd (1, 2) {
        my ($f, $ev) = ($fd, IO::Poll::POLLOUT());
        my $n = IO::Poll::_poll(0, $f, $ev);    # fills in revents
        return 1 if $n > 0 && ($ev & $GONE);
    }
    return 0;
}

sub nap { select(undef, undef, undef, $_[0]) }

# --- shared lock ---------------------------------------------------------------
# Taken before the job starts; a cleanup script waits for all jobs with
# LOCK_EX. Close-on-exec, so the job itself never holds it.
my $lock;
if ($lockfile ne "") {
    sysopen($lock, $lockfile, O_RDONLY | O_CREAT, 0666) or fail("open $lockfile: $!");
    fcntl($lock, F_SETFD, FD_CLOEXEC) or fail("fcntl $lockfile: $!");
    until (flock($lock, LOCK_SH | LOCK_NB)) {
        exit(128 + $SIGNO{$stop}) if $stop;
        exit 129 if reader_gone();
        nap(0.2);
    }
}

# --- start the job -------------------------------------------------------------
my $pid = fork();
defined $pid or fail("fork: $!");
if ($pid == 0) {
    setpgrp(0, 0);    # own process group: pgid = pid
    { no warnings "exec"; exec { "/bin/sh" } $sh_args[0], "-c", $script, @sh_args[1 .. $#sh_args] }
    print STDERR "$ME: exec /bin/sh: $!\n";
    POSIX::_exit(127);
}
setpgrp($pid, $pid);    # also from here, so the group exists before any kill
open(STDIN, "<", "/dev/null");    # the job alone reads stdin
alarm($deadline) if $deadline;

# --- wait ------------------------------------------------------------------------
my ($status, $reason);
sub reap {
    return if defined $status;
    $status = $? if waitpid($pid, POSIX::WNOHANG()) == $pid;
}
until (defined $status) {
    reap();
    last if defined $status;
    if    ($stop)         { $reason = $stop }
    elsif ($alarm)        { $reason = "deadline" }
    elsif (reader_gone()) { $reason = "gone" }
    last if $reason;
    nap(0.25);
}

# Does any process of the group still exist? EPERM: yes, but not ours.
sub group_alive { return kill(0, -$pid) || $!{EPERM} }

sub kill_group {
    kill("TERM", -$pid);
    kill("CONT", -$pid);    # stopped processes act on SIGTERM only when continued
    alarm($grace);    # replaces a pending deadline alarm
    $alarm = 0;
    while (1) {
        reap();
        return unless group_alive();
        last if $alarm;
        nap(0.1);
    }
    kill("KILL", -$pid);
    for (1 .. 20) {
        reap();
        return unless group_alive();
        nap(0.1);
    }
}

if (defined $status) {
    alarm(0);
    kill_group() if $kill_rest && group_alive();
    exit($status & 127 ? 128 + ($status & 127) : $status >> 8);
}
if ($reason eq "deadline") {
    print STDERR "$ME: deadline of $deadline s reached, terminating the job\n";
}
kill_group();
exit($reason eq "deadline" ? 124 : $reason eq "gone" ? 129 : 128 + $SIGNO{$reason});
