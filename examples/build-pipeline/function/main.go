// A tiny program standing in for a Lambda function's bootstrap: it prints
// the settings Proc A merged, which go:embed built into the binary.
package main

import (
	_ "embed"
	"fmt"
)

//go:embed settings.conf
var settings string

func main() { fmt.Print(settings) }
