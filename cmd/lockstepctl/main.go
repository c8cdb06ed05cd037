// Command lockstepctl is the operator's command line for lockstep.
package main

import "os"

func main() { os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr)) }
