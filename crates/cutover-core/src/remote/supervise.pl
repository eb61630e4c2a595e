# cutover's job supervisor: runs one script and ends it, with every process
# it started, when nobody waits for its result any more.
#
#   perl -e PROGRAM -- [-l JOBS_FILE] SCRIPT
#
# runs `sh -c SCRIPT` in a process group of its own, stdin, stdout and
# stderr passed through, and exits with its exit status (128 + the signal
# if a signal ended it). The job is ended when
#   - the reader of our stdout or stderr is gone: sshd closes the channel's
#     pipe when cutover's side of it goes away (Ctrl-C, a time limit,
#     cutover killed, the connection lost); a pipe's write end then polls
#     POLLERR (Linux) or POLLHUP (BSD, macOS), a socket POLLHUP;
#   - this program gets SIGTERM, SIGHUP, SIGINT or SIGPIPE.
# Ending it: SIGTERM (and SIGCONT) to the job's process group and to every
# process below the job, found in /proc or with ps (GNU timeout moves its
# command to a group of its own); SIGKILL to what is left after GRACE s.
# With -l, a shared flock on JOBS_FILE is held while the job runs (not
# inherited by it): a clean-up waits for an exclusive one.
#
# Core perl only (perl-base): IO (for IO::Poll::_poll) and Fcntl. No single
# quote characters outside comments (which are not sent): the program
# travels inside single quotes.

use strict;
use warnings;
use Fcntl qw(:flock F_SETFD FD_CLOEXEC O_RDONLY O_CREAT);
require IO;

$0 = "cutover-supervise";
my $GRACE = 5;
my $WNOHANG = 1;    # the same on Linux, macOS and the BSDs
sub fail { print STDERR "cutover-supervise: @_\n"; exit 125 }

my $jobs = "";
while (@ARGV && $ARGV[0] =~ /^-/) {
    my $opt = shift @ARGV;
    last if $opt eq "--";
    if ($opt eq "-l") { $jobs = shift @ARGV // "" }
    else { fail("unknown option $opt") }
}
@ARGV == 1 or fail("usage: [-l JOBS_FILE] SCRIPT");
my $script = shift @ARGV;

# Signals set a flag and interrupt the sleep below.
my $stop = "";
my %SIGNO = (HUP => 1, INT => 2, PIPE => 13, TERM => 15);
$SIG{$_} = sub { $stop ||= $_[0] } for keys %SIGNO;
$SIG{CHLD} = sub { };

# Whether the reader of fd 1 or fd 2 went away.
my $GONE = IO::Poll::POLLERR() | IO::Poll::POLLHUP();
sub reader_gone {
    for my $fd (1, 2) {
        my ($f, $ev) = ($fd, IO::Poll::POLLOUT());
        return 1 if IO::Poll::_poll(0, $f, $ev) > 0 && ($ev & $GONE);
    }
    return 0;
}
sub nap { select(undef, undef, undef, $_[0]) }

# The run's jobs lock, shared, close-on-exec.
if ($jobs ne "") {
    sysopen(my $lock, $jobs, O_RDONLY | O_CREAT, 0666) or fail("open $jobs: $!");
    fcntl($lock, F_SETFD, FD_CLOEXEC) or fail("fcntl $jobs: $!");
    flock($lock, LOCK_SH) or fail("flock $jobs: $!");
    our $held = $lock;
}

my $pid = fork();
defined $pid or fail("fork: $!");
if ($pid == 0) {
    setpgrp(0, 0);
    { no warnings "exec"; exec { "/bin/sh" } "sh", "-c", $script }
    print STDERR "cutover-supervise: exec /bin/sh: $!\n";
    exit 127;
}
setpgrp($pid, $pid);
open(STDIN, "<", "/dev/null");    # the job alone reads stdin

my ($status, $reason);
sub reap { $status = $? if !defined $status && waitpid($pid, $WNOHANG) == $pid }
until (defined $status) {
    reap();
    last if defined $status;
    $reason = $stop || (reader_gone() ? "gone" : "");
    last if $reason;
    nap(0.25);
}
exit($status & 127 ? 128 + ($status & 127) : $status >> 8) if defined $status;

# Every live process of the job: its group, and every process below it
# with the group of each (found again on each pass: processes come and go;
# zombies are left to their parents).
sub members {
    my (%parent, %group);
    if (opendir(my $proc, "/proc")) {
        for my $p (grep { /^[0-9]+$/ } readdir $proc) {
            open(my $fh, "<", "/proc/$p/stat") or next;
            my $stat = <$fh> // next;
            my @f = split / /, substr($stat, rindex($stat, ")") + 2);
            ($parent{$p}, $group{$p}) = ($f[1], $f[2]) unless $f[0] eq "Z";
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
            if ($p == $pid || $in{$parent{$p}} || $groups{$group{$p}}) {
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

my $left = signal_job("TERM");
my $until = time + $GRACE;
while ($left && time < $until) {
    nap(0.1);
    reap();
    $left = members();
}
signal_job("KILL") if $left;
reap();
exit($reason eq "gone" ? 129 : 128 + $SIGNO{$reason});
