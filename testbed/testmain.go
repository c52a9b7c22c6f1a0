package testbed

import "flag"

// ListingOnly reports, in a TestMain, whether the test binary only lists
// its tests (`go test -list`): building binaries or starting servers is
// then wasted. It parses the command line (testing.Short works after it).
func ListingOnly() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.list")
	return f != nil && f.Value.String() != ""
}
