// Package cli holds what mharaft's commands (mhanode, mhactl, mhademo,
// mhabench, mhajepsen) share on their command lines, all of them cobra
// commands:
//
//   - the build's version (VersionString, VersionCmd): api.BuildVersion
//     when the build set it with -ldflags (make dist does), else the module
//     version `go install ...@vX` stamped, else "dev"; followed by the VCS
//     revision, its time and whether the tree was modified, as Go's
//     -buildvcs recorded them (runtime/debug.ReadBuildInfo);
//   - the flags file (ParseFlagsFile, ApplyFlagsFile): one `name = value`
//     line per flag, so that a systemd unit can say
//     `mhanode --flags-file /etc/mharaft/mhanode.flags`;
//   - Go's single-dash spelling of long flags (NormalizeArgs): the
//     commands used package flag before cobra, which read -id as --id.
//
// Invariants:
//
//   - A flag given on the command line wins over the flags file: the
//     file's lines for that flag are not applied, not even the other
//     values of a repeatable flag.
//   - Every line of a flags file is a comment, blank, or names a flag the
//     command has; anything else (an unknown name, a missing value, a
//     non-repeatable flag written twice, a nested flags-file) is an error
//     naming the file and line, and nothing is applied.
//   - NormalizeArgs changes only arguments in flag position that name a
//     known long flag with one dash; flag values and everything after
//     "--" are passed through unchanged.
package cli
