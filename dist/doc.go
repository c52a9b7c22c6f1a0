// Package dist is the packaging of mharaft: `make dist` (scripts/dist.sh)
// builds mhanode and mhactl and packs them, with the files of this
// directory, into out/dist/mharaft_<debversion>_<arch>.deb and
// out/dist/mharaft-<version>-linux-<arch>.tar.gz. This package has no
// code: its test builds both, installs the .deb into a scratch root and
// runs the installed unit's command (dist_test.go). docs/INSTALL.md is the
// operator's side.
//
// Files here:
//
//	mhanode.service   the systemd unit: /usr/bin/mhanode --flags-file /etc/mharaft/mhanode.flags as mharaft
//	mhanode.flags     /etc/mharaft/mhanode.flags, a conffile: the flags an operator sets (id, addresses, peers, conf)
//	app1.conf         an example application file (MHA's format), in /usr/share/doc/mharaft/examples
//	debian/postinst   the mharaft user and group, the directories and modes (the tarball's setup.sh too)
//	debian/prerm      stops and disables mhanode on removal
//	debian/postrm     daemon-reload; purge removes /var/log/mharaft
//
// What the package installs (owner root unless said):
//
//	/usr/bin/mhanode, /usr/bin/mhactl             0755  static (CGO_ENABLED=0), api.BuildVersion set to the version
//	/usr/lib/systemd/system/mhanode.service       0644
//	/etc/mharaft/                                 0750  root:mharaft (postinst)
//	/etc/mharaft/mhanode.flags                    0640  root:mharaft (postinst)
//	/var/lib/mharaft/, /var/log/mharaft/          0750  mharaft:mharaft (postinst; the unit's StateDirectory, LogsDirectory)
//	/usr/share/doc/mharaft/                       README, INSTALL, MIGRATION, SECURITY, ARCHITECTURE, REFERENCE, EXIT_CODES, examples/
//	/usr/share/{bash-completion,zsh,fish}/...     completion scripts of mhactl and mhanode (cobra's)
//
// Invariants:
//
//   - mhanode never runs as root from the package: the unit's User= is
//     mharaft, a system user without a login shell, with no capabilities.
//   - Secrets are the service user's only: mhanode refuses a token file
//     that group or others can read, so the token is 0600 mharaft; the
//     application files (passwords) are 0640 root:mharaft in a 0750
//     directory.
//   - The .deb and the tarball hold the same tree with the same modes
//     (the tarball adds setup.sh, which is postinst, and INSTALL.md).
//   - The package neither enables nor starts mhanode: unconfigured, the
//     unit's command stops with exit status 2 and names what is missing,
//     and the unit does not restart on 2 (RestartPreventExitStatus=2).
//   - postinst can run again (upgrade, reinstall): it keeps the user and
//     an administrator's edits of the flags file (a conffile) and puts the
//     modes back.
package dist
