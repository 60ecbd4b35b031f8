// The ecosystem's usual design: a Go net/http server with only the standard library, as Istio's,
// Linkerd's and Kyverno's webhooks are built. It reads the AdmissionReview, adds the label, the
// status annotation and one sidecar, and answers with a base64 JSON Patch.
// Usage: go run . PORT CERT KEY INJECTION_JSON
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

type injection struct {
	Labels           map[string]string `json:"labels"`
	StatusAnnotation string            `json:"statusAnnotation"`
	StatusValue      string            `json:"statusValue"`
	SkipNamespaces   []string          `json:"skipNamespaces"`
	Container        json.RawMessage   `json:"container"`
}

type groupVersionKind struct {
	Kind string `json:"kind"`
}

// The parts of the Pod the decision reads; the rest of it is parsed and checked but not kept,
// as a typed webhook does.
type pod struct {
	Metadata struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec json.RawMessage `json:"spec"`
}

type admissionReview struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		UID         string           `json:"uid"`
		Kind        groupVersionKind `json:"kind"`
		Namespace   string           `json:"namespace"`
		Operation   string           `json:"operation"`
		SubResource string           `json:"subResource"`
		Object      *pod             `json:"object"`
	} `json:"request"`
}

type response struct {
	UID       string `json:"uid"`
	Allowed   bool   `json:"allowed"`
	PatchType string `json:"patchType,omitempty"`
	Patch     []byte `json:"patch,omitempty"` // encoding/json writes []byte as base64
}

type operation struct {
	Op    string      `json:"op"`
	Path  string      `json:"path"`
	Value interface{} `json:"value"`
}

var pointer = strings.NewReplacer("~", "~0", "/", "~1")

func (inj *injection) patchFor(p *pod) []operation {
	if _, done := p.Metadata.Annotations[inj.StatusAnnotation]; done {
		return nil
	}
	var ops []operation
	if p.Metadata.Labels != nil {
		for k, v := range inj.Labels {
			ops = append(ops, operation{"add", "/metadata/labels/" + pointer.Replace(k), v})
		}
	} else {
		ops = append(ops, operation{"add", "/metadata/labels", inj.Labels})
	}
	if p.Metadata.Annotations != nil {
		ops = append(ops, operation{"add", "/metadata/annotations/" + pointer.Replace(inj.StatusAnnotation), inj.StatusValue})
	} else {
		ops = append(ops, operation{"add", "/metadata/annotations", map[string]string{inj.StatusAnnotation: inj.StatusValue}})
	}
	return append(ops, operation{"add", "/spec/containers/-", inj.Container})
}

func (inj *injection) skips(namespace string) bool {
	for _, ns := range inj.SkipNamespaces {
		if ns == namespace {
			return true
		}
	}
	return false
}

func (inj *injection) mutate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 3<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	var review admissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := review.Request
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" || req == nil || req.UID == "" {
		http.Error(w, "not an admission.k8s.io/v1 AdmissionReview with a request uid", http.StatusBadRequest)
		return
	}
	resp := response{UID: req.UID, Allowed: true}
	if req.Kind.Kind == "Pod" && req.Operation == "CREATE" && req.SubResource == "" && req.Object != nil && !inj.skips(req.Namespace) {
		if ops := inj.patchFor(req.Object); ops != nil {
			patch, err := json.Marshal(ops)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			resp.PatchType, resp.Patch = "JSONPatch", patch
		}
	}
	out, err := json.Marshal(map[string]interface{}{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func main() {
	if len(os.Args) != 5 {
		log.Fatal("usage: go-baseline PORT CERT KEY INJECTION_JSON")
	}
	raw, err := os.ReadFile(os.Args[4])
	if err != nil {
		log.Fatal(err)
	}
	var inj injection
	if err := json.Unmarshal(raw, &inj); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", inj.mutate)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	server := &http.Server{
		Addr:              "127.0.0.1:" + os.Args[1],
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	log.Printf("go baseline listening on %s", server.Addr)
	log.Fatal(server.ListenAndServeTLS(os.Args[2], os.Args[3]))
}
