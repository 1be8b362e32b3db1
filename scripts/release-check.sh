#!/usr/bin/env bash
# release-check.sh [DIST]: check what `goreleaser release --snapshot` (make
# release-snapshot) put in DIST (default dist/), as a user would meet it:
#
#   - metadata.json names the version; checksums.txt lists exactly the six
#     archives, two .deb and two .rpm, and every sum matches;
#   - every archive lists exactly the expected files: the binary, README,
#     LICENSE, CHANGELOG, docs/*.md, docs/*.html (the benchmark charts),
#     docs/cli/*.md (the CLI reference the docs link), config/echoctl.yaml,
#     the four completion scripts and one gzipped man page a command;
#   - every binary is for its platform, static (CGO_ENABLED=0), -trimpath,
#     and stamped with the version; the linux/amd64 one prints that version,
#     commit and platform (not "development build"), and its completion
#     scripts, man pages and config file are what the archive holds;
#   - each .deb has the right control fields, conffiles and maintainer
#     scripts, and unpacks (dpkg-deb -x) to the binary, config file, systemd
#     unit, man pages and completions at their paths; the unit is hardened
#     and passes systemd-analyze verify and security where systemd-analyze
#     is installed;
#   - each .rpm is an RPM (and, where rpm is installed, holds the same paths
#     with the config file marked noreplace);
#   - the Homebrew cask names each macOS and Linux archive with its checksum,
#     the binary, every man page and the completions.
#
# Needs bash, go, jq, tar, unzip, gzip, sha256sum and dpkg-deb. Ends with
# "release-check: N passed, M failed" and exits 1 if any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dist=$(cd "${1:-dist}" && pwd)

for tool in go jq tar unzip gzip sha256sum dpkg-deb cmp; do
	command -v "$tool" >/dev/null || { echo "release-check: $tool is not installed" >&2; exit 2; }
done

passed=0 failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
# check DESCRIPTION COMMAND...: one check, passing when COMMAND succeeds.
check() {
	local what=$1; shift
	if "$@"; then pass; else fail "$what"; fi
}
# same A B WHAT: compare two texts, showing the difference when they differ.
same() {
	if [ "$1" = "$2" ]; then pass; else fail "$3"; diff <(printf '%s\n' "$1") <(printf '%s\n' "$2") | head -20 >&2 || true; fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

version=$(jq -r .version "$dist/metadata.json")
commit=$(jq -r .commit "$dist/metadata.json")
[ -n "$version" ] && [ "$version" != null ] || { echo "release-check: no version in $dist/metadata.json" >&2; exit 2; }
debversion=${version/-/\~} # nfpm: 0.0.1-next is 0.0.1~next, sorting before 0.0.1
echo "release-check: $dist, version $version, commit $commit"

archives=() debs=() rpms=()
for os in linux darwin windows; do
	for arch in amd64 arm64; do
		ext=tar.gz
		[ "$os" = windows ] && ext=zip
		archives+=("echoctl_${version}_${os}_${arch}.$ext")
	done
done
for arch in amd64 arm64; do debs+=("echoctl_${debversion}_${arch}.deb"); done
for arch in x86_64 aarch64; do rpms+=("echoctl-${debversion}-1.${arch}.rpm"); done

# --- checksums.txt -----------------------------------------------------------
same "$(printf '%s\n' "${archives[@]}" "${debs[@]}" "${rpms[@]}" | sort)" \
	"$(awk '{print $2}' "$dist/checksums.txt" | sort)" \
	"checksums.txt does not list exactly the archives and packages"
check "sha256sum -c checksums.txt" bash -c 'cd "$1" && sha256sum --quiet -c checksums.txt' _ "$dist"
sum() { awk -v f="$1" '$2 == f {print $1}' "$dist/checksums.txt"; }

# --- the linux/amd64 binary, as a user runs it ---------------------------------
mkdir "$work/linux_amd64"
tar -xzf "$dist/echoctl_${version}_linux_amd64.tar.gz" -C "$work/linux_amd64"
bin=$work/linux_amd64/echoctl
for args in version --version; do
	out=$("$bin" "$args")
	check "echoctl $args prints $version, commit $commit, linux/amd64: $out" \
		grep -Eq "^echoctl ${version//./\\.} \(commit ${commit}, built [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z, go[0-9.]+ linux/amd64\)$" <<<"$out"
done
# What the archives must hold, from the binary itself.
"$bin" gen man --dir "$work/man" --gzip
manpages=$(cd "$work/man" && ls | sed 's|^|manpages/|' | sort)
check "the binary has man pages for echoctl and its commands" grep -qx 'manpages/echoctl-serve.1.gz' <<<"$manpages"
docs=$(cd "$repo" && ls docs/*.md docs/*.html docs/cli/*.md)
expected() { # expected BINARY: the sorted list of files an archive holds
	printf '%s\n' "$1" README.md LICENSE CHANGELOG.md config/echoctl.yaml \
		completions/echoctl.bash completions/echoctl.zsh completions/echoctl.fish completions/echoctl.ps1 \
		$docs $manpages | sort
}
for shell in bash zsh fish powershell; do
	file=$shell
	[ "$shell" = powershell ] && file=ps1
	check "completions/echoctl.$file is what echoctl completion $shell prints" \
		cmp -s <("$bin" completion "$shell") "$work/linux_amd64/completions/echoctl.$file"
done
check "bash loads completions/echoctl.bash" \
	bash --norc --noprofile -c 'source "$1" && complete -p echoctl | grep -q __start_echoctl' _ "$work/linux_amd64/completions/echoctl.bash"
check "man pages name version $version" \
	bash -c 'gzip -dc "$1" | grep -qF "\"echoctl $2\""' _ "$work/linux_amd64/manpages/echoctl.1.gz" "$version"
check "config/echoctl.yaml in the archive is the repository's" cmp -s "$repo/config/echoctl.yaml" "$work/linux_amd64/config/echoctl.yaml"

# --- every archive -----------------------------------------------------------
for archive in "${archives[@]}"; do
	platform=${archive#echoctl_"${version}"_}
	platform=${platform%%.*} # linux_amd64
	os=${platform%_*} arch=${platform#*_}
	dir=$work/$platform
	mkdir -p "$dir"
	binary=echoctl
	if [ "$os" = windows ]; then
		binary=echoctl.exe
		listing=$(unzip -Z1 "$dist/$archive" | sort)
		unzip -q -o "$dist/$archive" "$binary" -d "$dir"
	else
		listing=$(tar -tzf "$dist/$archive" | sort)
		tar -xzf "$dist/$archive" -C "$dir" "$binary"
	fi
	same "$(expected "$binary")" "$listing" "$archive does not hold exactly the expected files (- expected, + found)"
	info=$(go version -m "$dir/$binary")
	for setting in "GOOS=$os" "GOARCH=$arch" "CGO_ENABLED=0" "-trimpath=true"; do
		check "$archive: $binary is built with $setting" grep -Eq "^[[:space:]]build[[:space:]]+${setting}\$" <<<"$info"
	done
	# -trimpath leaves -ldflags out of the build info: look for the string.
	check "$archive: $binary is stamped with version $version" env LC_ALL=C grep -qaF "$version" "$dir/$binary"
done

# --- .deb --------------------------------------------------------------------
for deb in "${debs[@]}"; do
	arch=${deb%.deb}
	arch=${arch##*_}
	x=$work/deb_$arch
	dpkg-deb -x "$dist/$deb" "$x"
	dpkg-deb -e "$dist/$deb" "$x/DEBIAN"
	same "echoctl $debversion $arch" "$(dpkg-deb -f "$dist/$deb" Package Version Architecture | awk '{printf "%s%s", sep, $2; sep=" "}')" \
		"$deb: Package, Version and Architecture"
	same "/etc/echoctl/config.yaml" "$(cat "$x/DEBIAN/conffiles")" "$deb: conffiles"
	for script in postinst prerm postrm; do
		check "$deb: $script is an executable sh script" bash -c '[ -x "$1" ] && sh -n "$1"' _ "$x/DEBIAN/$script"
	done
	check "$deb: /usr/bin/echoctl is executable" test -x "$x/usr/bin/echoctl"
	check "$deb: /etc/echoctl/config.yaml is config/echoctl.yaml" cmp -s "$repo/config/echoctl.yaml" "$x/etc/echoctl/config.yaml"
	check "$deb: the systemd unit is packaging/systemd/echoctl.service" \
		cmp -s "$repo/packaging/systemd/echoctl.service" "$x/usr/lib/systemd/system/echoctl.service"
	for f in usr/share/bash-completion/completions/echoctl usr/share/zsh/vendor-completions/_echoctl \
		usr/share/fish/vendor_completions.d/echoctl.fish usr/share/doc/echoctl/copyright; do
		check "$deb: /$f" test -s "$x/$f"
	done
	same "$manpages" "$(cd "$x/usr/share/man/man1" && ls | sed 's|^|manpages/|' | sort)" "$deb: man pages in /usr/share/man/man1"
	if [ "$arch" = amd64 ]; then
		check "$deb: /usr/bin/echoctl prints version $version" bash -c '"$1" version | grep -q "^echoctl $2 "' _ "$x/usr/bin/echoctl" "$version"
	fi
done

# The unit: hardened, running echoctl serve; systemd's own checks where it is.
unit=$work/deb_amd64/usr/lib/systemd/system/echoctl.service
for line in 'ExecStart=/usr/bin/echoctl serve --config /etc/echoctl/config.yaml' DynamicUser=yes NoNewPrivileges=yes \
	ProtectSystem=strict ProtectHome=yes PrivateTmp=yes CapabilityBoundingSet= 'WantedBy=multi-user.target'; do
	check "echoctl.service has $line" grep -qxF "$line" "$unit"
done
if command -v systemd-analyze >/dev/null; then
	# verify wants ExecStart's binary to exist: point it at the unpacked one.
	mkdir "$work/unit"
	sed "s|/usr/bin/echoctl|$work/deb_amd64/usr/bin/echoctl|" "$unit" >"$work/unit/echoctl.service"
	out=$(systemd-analyze verify --man=no "$work/unit/echoctl.service" 2>&1) && [ -z "$out" ] && pass ||
		fail "systemd-analyze verify echoctl.service: $out"
	# Exposure 0 (locked down) to 100 (unsafe); the unit scores about 14.
	check "systemd-analyze security: exposure of echoctl.service at most 2.0" \
		bash -c 'systemd-analyze security --offline=yes --threshold=20 --no-pager "$1" >/dev/null 2>&1' _ "$unit"
else
	echo "release-check: no systemd-analyze, the unit is not verified"
fi

# --- .rpm --------------------------------------------------------------------
for rpm in "${rpms[@]}"; do
	check "$rpm is an RPM package" bash -c '[ "$(head -c 4 "$1" | od -An -tx1 | tr -d " \n")" = edabeedb ]' _ "$dist/$rpm"
	if command -v rpm >/dev/null; then
		files=$(rpm -qlp "$dist/$rpm" 2>/dev/null)
		for f in /usr/bin/echoctl /etc/echoctl/config.yaml /usr/lib/systemd/system/echoctl.service \
			/usr/share/man/man1/echoctl.1.gz /usr/share/zsh/site-functions/_echoctl; do
			check "$rpm holds $f" grep -qxF "$f" <<<"$files"
		done
		check "$rpm: /etc/echoctl/config.yaml is %config(noreplace)" \
			bash -c 'rpm -qp --qf "[%{FILEFLAGS:fflags} %{FILENAMES}\n]" "$1" 2>/dev/null | grep -Eq "^c[a-z]*n[a-z]* /etc/echoctl/config.yaml$"' _ "$dist/$rpm"
	fi
done

# --- Homebrew cask -------------------------------------------------------------
cask=$dist/homebrew/Casks/echoctl.rb
if [ -f "$cask" ]; then
	pass
	check "the cask is version $version" grep -qxF "  version \"$version\"" "$cask"
	# url and sha256 pairs, with #{version} spelt out: "ARCHIVE SHA256".
	pairs=$(sed "s/#{version}/$version/g" "$cask" | awk '
		$1 == "url" { gsub(/"/, "", $2); n = split($2, p, "/"); url = p[n]; next }
		$1 == "sha256" && url != "" { gsub(/"/, "", $2); print url, $2; url = "" }' | sort)
	want=$(for a in "${archives[@]}"; do case $a in *windows*) ;; *) echo "$a $(sum "$a")" ;; esac; done | sort)
	same "$want" "$pairs" "the cask's url/sha256 pairs are not the macOS and Linux archives with their checksums"
	check "the cask installs the echoctl binary" grep -qxF '  binary "echoctl"' "$cask"
	same "$manpages" "$(awk '$1 == "manpage" {gsub(/"/, "", $2); print $2}' "$cask" | sort)" "the cask's manpage lines"
	for c in bash_completion:completions/echoctl.bash zsh_completion:completions/echoctl.zsh fish_completion:completions/echoctl.fish; do
		check "the cask has ${c%%:*} ${c#*:}" grep -qxF "  ${c%%:*} \"${c#*:}\"" "$cask"
	done
	check "the cask's postflight runs echoctl version" grep -qF 'args: ["version"], must_succeed: true' "$cask"
	check "the cask has caveats" grep -q '^  caveats <<~EOS' "$cask"
	if command -v ruby >/dev/null; then
		check "ruby -c accepts the cask" ruby -c "$cask" >/dev/null
	fi
else
	fail "no Homebrew cask at $cask"
fi

echo "release-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
