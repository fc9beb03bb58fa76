// manifestcheck validates rendered Helm output offline, where kubeconform cannot fetch its schemas.
//
//	manifestcheck validate < manifests.yaml   strict-decode every object into its Go API type (unknown or mistyped
//	                                          fields fail), then check names, labels, references between objects
//	manifestcheck tojson < manifests.yaml     the objects as one JSON array (for scripts without a YAML parser)
//
// Strict decoding catches what a schema would (typos, wrong types, wrong nesting); it does not run the API server's
// semantic validation, so required fields and value ranges are checked by hand below only where the chart is at risk.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "validate" && os.Args[1] != "tojson") {
		fmt.Fprintln(os.Stderr, "usage: manifestcheck validate|tojson < manifests.yaml")
		os.Exit(2)
	}
	documents, err := splitDocuments(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "manifestcheck:", err)
		os.Exit(1)
	}
	if os.Args[1] == "tojson" {
		out := make([]json.RawMessage, 0, len(documents))
		for _, document := range documents {
			converted, err := yaml.YAMLToJSON(document)
			if err != nil {
				fmt.Fprintln(os.Stderr, "manifestcheck:", err)
				os.Exit(1)
			}
			out = append(out, converted)
		}
		encoded, _ := json.Marshal(out)
		fmt.Println(string(encoded))
		return
	}
	problems := validate(documents)
	for _, problem := range problems {
		fmt.Fprintln(os.Stderr, "  "+problem)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "manifestcheck: %d problem(s) in %d objects\n", len(problems), len(documents))
		os.Exit(1)
	}
	fmt.Printf("manifestcheck: %d objects valid\n", len(documents))
}

// splitDocuments returns the non-empty YAML documents of a multi-document stream.
func splitDocuments(r io.Reader) ([][]byte, error) {
	data, err := io.ReadAll(bufio.NewReader(r))
	if err != nil {
		return nil, err
	}
	var documents [][]byte
	for _, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		meaningful := false
		for _, line := range strings.Split(part, "\n") {
			trimmed := strings.TrimSpace(line)
			if trimmed != "" && !strings.HasPrefix(trimmed, "#") {
				meaningful = true
				break
			}
		}
		if meaningful {
			documents = append(documents, []byte(part))
		}
	}
	return documents, nil
}

type podOwner struct {
	name     string
	template corev1.PodTemplateSpec
	selector map[string]string
}

func validate(documents [][]byte) []string {
	var problems []string
	report := func(where, format string, args ...any) {
		problems = append(problems, where+": "+fmt.Sprintf(format, args...))
	}
	var owners []podOwner
	services := map[string]corev1.Service{}
	var pdbs []policyv1.PodDisruptionBudget
	configMaps := map[string]bool{}
	seen := map[string]bool{}

	for _, document := range documents {
		var head object
		if err := yaml.Unmarshal(document, &head); err != nil {
			report("document", "not YAML: %v", err)
			continue
		}
		where := fmt.Sprintf("%s %s", head.Kind, head.Metadata.Name)
		key := head.APIVersion + "/" + head.Kind + "/" + head.Metadata.Name
		if seen[key] {
			report(where, "defined twice")
		}
		seen[key] = true
		if errs := validation.IsDNS1123Subdomain(head.Metadata.Name); len(errs) > 0 {
			report(where, "name: %s", strings.Join(errs, "; "))
		}
		strict := func(into any) bool {
			if err := yaml.UnmarshalStrict(document, into); err != nil {
				report(where, "%v", err)
				return false
			}
			return true
		}
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			var d appsv1.Deployment
			if strict(&d) {
				checkLabels(where, d.Labels, report)
				owners = append(owners, podOwner{d.Name, d.Spec.Template, d.Spec.Selector.MatchLabels})
			}
		case "apps/v1 StatefulSet":
			var s appsv1.StatefulSet
			if strict(&s) {
				checkLabels(where, s.Labels, report)
				if len(s.Name) > 52 {
					report(where, "name longer than 52 characters (its pods' controller-revision-hash label would not fit)")
				}
				owners = append(owners, podOwner{s.Name, s.Spec.Template, s.Spec.Selector.MatchLabels})
				if s.Spec.ServiceName == "" {
					report(where, "no serviceName")
				}
				for _, claim := range s.Spec.VolumeClaimTemplates {
					if claim.Spec.Resources.Requests.Storage().IsZero() {
						report(where, "volume claim %s requests no storage", claim.Name)
					}
				}
			}
		case "v1 Service":
			var s corev1.Service
			if strict(&s) {
				checkLabels(where, s.Labels, report)
				if errs := validation.IsDNS1035Label(s.Name); len(errs) > 0 {
					report(where, "a Service name must be a DNS-1035 label: %s", strings.Join(errs, "; "))
				}
				for _, port := range s.Spec.Ports {
					if port.Port < 1 || port.Port > 65535 {
						report(where, "port %s: %d is not 1-65535", port.Name, port.Port)
					}
				}
				services[s.Name] = s
			}
		case "policy/v1 PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			if strict(&p) {
				pdbs = append(pdbs, p)
			}
		case "v1 ConfigMap":
			var c corev1.ConfigMap
			if strict(&c) {
				configMaps[c.Name] = true
			}
		case "v1 Secret":
			var s corev1.Secret
			strict(&s)
		case "v1 ServiceAccount":
			var s corev1.ServiceAccount
			strict(&s)
		case "cert-manager.io/v1 Certificate":
			var c certmanagerv1.Certificate
			if strict(&c) {
				if len(c.Spec.URIs) != 1 {
					report(where, "a Mycelium certificate carries exactly one URI SAN, this one has %d", len(c.Spec.URIs))
				}
				for _, uri := range c.Spec.URIs {
					if !regexp.MustCompile(`^spiffe://[a-z0-9._-]{1,255}/(coordinator|shard-router|replicator|node-agent|client|admin)/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`).MatchString(uri) {
						report(where, "URI SAN %q is not spiffe://<network-id>/<role>/<name>", uri)
					}
				}
				if c.Spec.SecretName == "" || c.Spec.IssuerRef.Name == "" {
					report(where, "needs secretName and issuerRef.name")
				}
			}
		case "cert-manager.io/v1 Issuer":
			var i certmanagerv1.Issuer
			if strict(&i) && (i.Spec.CA == nil || i.Spec.CA.SecretName == "") {
				report(where, "a CA issuer needs spec.ca.secretName")
			}
		case "monitoring.coreos.com/v1 ServiceMonitor":
			var m monitoringv1.ServiceMonitor
			strict(&m)
		case "monitoring.coreos.com/v1 PrometheusRule":
			var r monitoringv1.PrometheusRule
			if strict(&r) {
				for _, group := range r.Spec.Groups {
					for _, rule := range group.Rules {
						if rule.Alert == "" || rule.Expr.String() == "" {
							report(where, "group %s: a rule without alert name or expression", group.Name)
						}
					}
				}
			}
		case "networking.k8s.io/v1 NetworkPolicy":
			var n networkingv1.NetworkPolicy
			if strict(&n) {
				checkLabels(where, n.Labels, report)
			}
		case "batch/v1 Job":
			var j batchv1.Job
			if strict(&j) {
				checkLabels(where, j.Labels, report)
				checkPod("pods of Job "+j.Name, j.Spec.Template, configMaps, report)
			}
		case "batch/v1 CronJob":
			var c batchv1.CronJob
			if strict(&c) {
				checkLabels(where, c.Labels, report)
				if len(c.Name) > 52 {
					report(where, "name longer than 52 characters (the CronJob controller appends 11 to its Jobs' names)")
				}
				checkPod("pods of CronJob "+c.Name, c.Spec.JobTemplate.Spec.Template, configMaps, report)
			}
		case "v1 Pod":
			var p corev1.Pod
			if strict(&p) {
				checkLabels(where, p.Labels, report)
				checkPod("Pod "+p.Name, corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}, configMaps, report)
			}
		case "rbac.authorization.k8s.io/v1 Role":
			var r rbacv1.Role
			strict(&r)
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			var b rbacv1.RoleBinding
			strict(&b)
		default:
			report(where, "unexpected apiVersion/kind %s %s (add it to manifestcheck)", head.APIVersion, head.Kind)
		}
	}

	for _, owner := range owners {
		where := "pods of " + owner.name
		checkPod(where, owner.template, configMaps, report)
		if !labels.SelectorFromSet(owner.selector).Matches(labels.Set(owner.template.Labels)) {
			report(where, "the selector does not match the pod template's labels")
		}
	}
	for name, service := range services {
		if len(service.Spec.Selector) == 0 {
			continue
		}
		selector := labels.SelectorFromSet(service.Spec.Selector)
		matched := false
		for _, owner := range owners {
			if selector.Matches(labels.Set(owner.template.Labels)) {
				matched = true
				for _, port := range service.Spec.Ports {
					if port.TargetPort.StrVal != "" && !hasContainerPort(owner.template, port.TargetPort.StrVal) {
						report("Service "+name, "targetPort %q is not a port of the pods of %s", port.TargetPort.StrVal, owner.name)
					}
				}
			}
		}
		if !matched {
			report("Service "+name, "selects no pods")
		}
	}
	for _, pdb := range pdbs {
		selector := labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels)
		count := 0
		for _, owner := range owners {
			if selector.Matches(labels.Set(owner.template.Labels)) {
				count++
			}
		}
		if count != 1 {
			report("PodDisruptionBudget "+pdb.Name, "selects the pods of %d workloads, expected 1", count)
		}
	}
	sort.Strings(problems)
	return problems
}

func checkLabels(where string, set map[string]string, report func(string, string, ...any)) {
	for key, value := range set {
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			report(where, "label key %q: %s", key, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
			report(where, "label %s=%q: %s", key, value, strings.Join(errs, "; "))
		}
	}
}

func hasContainerPort(template corev1.PodTemplateSpec, name string) bool {
	for _, container := range template.Spec.Containers {
		for _, port := range container.Ports {
			if port.Name == name {
				return true
			}
		}
	}
	return false
}

func checkPod(where string, template corev1.PodTemplateSpec, configMaps map[string]bool, report func(string, string, ...any)) {
	checkLabels(where, template.Labels, report)
	volumes := map[string]corev1.Volume{}
	for _, volume := range template.Spec.Volumes {
		if _, twice := volumes[volume.Name]; twice {
			report(where, "volume %s defined twice", volume.Name)
		}
		volumes[volume.Name] = volume
		if volume.ConfigMap != nil && !configMaps[volume.ConfigMap.Name] {
			report(where, "volume %s: ConfigMap %s is not part of the chart", volume.Name, volume.ConfigMap.Name)
		}
		if volume.Projected != nil {
			paths := map[string]bool{}
			for _, source := range volume.Projected.Sources {
				if source.Secret == nil {
					continue
				}
				for _, item := range source.Secret.Items {
					if paths[item.Path] {
						report(where, "projected volume %s: path %s twice", volume.Name, item.Path)
					}
					paths[item.Path] = true
				}
			}
		}
	}
	claims := map[string]bool{"data": true} // volumeClaimTemplates of the chart's StatefulSets
	all := append(append([]corev1.Container{}, template.Spec.InitContainers...), template.Spec.Containers...)
	if len(template.Spec.Containers) == 0 {
		report(where, "no containers")
	}
	for _, container := range all {
		at := where + ", container " + container.Name
		if container.Image == "" {
			report(at, "no image")
		}
		names := map[string]bool{}
		for _, env := range container.Env {
			if names[env.Name] {
				report(at, "env %s set twice", env.Name)
			}
			names[env.Name] = true
			if errs := validation.IsEnvVarName(env.Name); len(errs) > 0 {
				report(at, "env name %q: %s", env.Name, strings.Join(errs, "; "))
			}
			if env.ValueFrom != nil && env.Value != "" {
				report(at, "env %s has both value and valueFrom", env.Name)
			}
			// $(VAR) only expands variables defined earlier in the same list.
			for _, reference := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(env.Value, -1) {
				if !names[reference[1]] || reference[1] == env.Name {
					report(at, "env %s refers to $(%s), which is not defined before it", env.Name, reference[1])
				}
			}
		}
		mountPaths := map[string]bool{}
		for _, mount := range container.VolumeMounts {
			if _, ok := volumes[mount.Name]; !ok && !claims[mount.Name] {
				report(at, "mounts volume %s, which the pod does not define", mount.Name)
			}
			if mountPaths[mount.MountPath] {
				report(at, "two mounts at %s", mount.MountPath)
			}
			mountPaths[mount.MountPath] = true
		}
		for _, port := range container.Ports {
			if errs := validation.IsValidPortName(port.Name); len(errs) > 0 {
				report(at, "port name %q: %s", port.Name, strings.Join(errs, "; "))
			}
		}
		for kind, probe := range map[string]*corev1.Probe{"startup": container.StartupProbe, "liveness": container.LivenessProbe, "readiness": container.ReadinessProbe} {
			if probe == nil || probe.HTTPGet == nil {
				continue
			}
			if name := probe.HTTPGet.Port.StrVal; name != "" {
				found := false
				for _, port := range container.Ports {
					found = found || port.Name == name
				}
				if !found {
					report(at, "%s probe uses port %q, which the container does not name", kind, name)
				}
			}
		}
	}
}
