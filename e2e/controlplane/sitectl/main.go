// Command kube-sitectl runs kube-controller-manager or kube-scheduler, built from the same
// k8s.io/kubernetes version as kube-controlplane's API server. It is test tooling only: one
// multi-call binary, so that both share one build and one link.
//
//	kube-sitectl controller-manager [kube-controller-manager flags]
//	kube-sitectl scheduler [kube-scheduler flags]
//	kube-sitectl version
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/version"
	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var cmd *cobra.Command
	switch os.Args[1] {
	case "controller-manager":
		cmd = cmapp.NewControllerManagerCommand()
	case "scheduler":
		cmd = schedapp.NewSchedulerCommand()
	case "version":
		fmt.Println(version.Get().GitVersion)
		return
	default:
		usage()
		os.Exit(2)
	}
	cmd.SetArgs(os.Args[2:])
	os.Exit(cli.Run(cmd))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kube-sitectl controller-manager|scheduler|version [flags]")
}
