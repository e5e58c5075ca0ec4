package main

import (
	"testing"

	"github.com/fieldsync/fieldsync/server/servertest"
)

// TestPhone_ReturnReasonAndAnswer: the cadre's phone prints why the lead
// returned the work, by the lead's name, and the county's answer to the
// cadre's request for help; a county user answers from their phone.
func TestPhone_ReturnReasonAndAnswer(t *testing.T) {
	c := newCity(t)
	cadre, lead, county := t.TempDir(), t.TempDir(), t.TempDir()
	w1 := c.ids["W1"]
	c.must(t, cadre, "-password", servertest.CityPassword, "login", "a1")
	c.must(t, cadre, "sync")
	c.must(t, cadre, "record", w1, "-method", "visit", "-outcome", "dissuaded", "-reached")
	c.must(t, cadre, "escalate", w1, "-reason", "家属阻拦，需民警上门")
	contains(t, "cadre sync", c.must(t, cadre, "sync"), "sent 2 ops (2 applied, 0 rejected)")

	c.must(t, lead, "-password", servertest.CityPassword, "login", "leadA")
	c.must(t, lead, "sync")
	if _, err := c.phoneRun(t, lead, "review", w1, "return"); err == nil {
		t.Fatal("a return without a comment was queued")
	}
	c.must(t, lead, "review", w1, "return", "-comment", "请补充现场照片")
	c.must(t, lead, "sync")

	c.must(t, county, "-password", servertest.CityPassword, "login", "county1")
	c.must(t, county, "sync")
	if _, err := c.phoneRun(t, county, "answer", w1); err == nil {
		t.Fatal("an answer without text was queued")
	}
	contains(t, "answer", c.must(t, county, "answer", w1, "-answer", "已联系派出所，今晚上门"), "escalation.answered")
	contains(t, "county sync", c.must(t, county, "sync"), "sent 1 ops (1 applied, 0 rejected)")

	c.must(t, cadre, "sync")
	out := c.must(t, cadre, "show", w1)
	contains(t, "cadre show", out, "returned by 王镇甲 at ", ": 请补充现场照片", "escalations (1)",
		"asked by 刘村一 (a1, you): 家属阻拦，需民警上门", "answer by 李县 at ", ": 已联系派出所，今晚上门", "return by 王镇甲: 请补充现场照片")
}
