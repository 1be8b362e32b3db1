// Command echoctl is a TCP echo server and client; see the cmd package.
package main

import (
	"os"

	"github.com/echoctl/echoctl/cmd"
)

func main() { os.Exit(cmd.Execute()) }
