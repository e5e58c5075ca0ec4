package demo

import (
	"math/rand/v2"

	"github.com/fieldsync/fieldsync/syncproto"
)

// What people write in the demo's history: a cadre's notes on an attempt,
// a lead's comment on a review and reason for a return, a cadre's reason
// for asking help, and the county's answer to it. They read like field
// reports; none names a person.

// attemptNotes are a cadre's notes, by the attempt's outcome.
var attemptNotes = map[string][]string{
	syncproto.OutcomeDissuaded: {
		"已告知对方此为诈骗，对方表示理解，已停止转账",
		"上门讲解刷单返利骗局，当事人已卸载涉诈App",
		"电话劝阻成功，当事人承诺不再与对方联系",
		"与家属一同劝阻，当事人已删除对方好友",
		"当事人正准备转账，经劝阻已放弃，已安装国家反诈中心App",
	},
	syncproto.OutcomeAlreadyDefrauded: {
		"当事人已转账，已指导其到派出所报案",
		"已被骗，已协助联系银行止付并报警",
		"当事人已通过网银转出，已告知保留聊天记录报案",
	},
	syncproto.OutcomeNotTarget: {
		"核实为正常业务往来，非诈骗",
		"号码已更换机主，现机主与预警无关",
		"经核实为误报，当事人未接触涉诈信息",
	},
	syncproto.OutcomeUnreachable: {
		"电话无人接听，上门家中无人",
		"电话关机，邻居称其外出务工",
		"号码停机，地址无此人，待进一步核实",
	},
	syncproto.OutcomeRefused: {
		"当事人情绪激动，拒绝沟通，坚称在做正规投资",
		"当事人不听劝阻，挂断电话",
	},
}

// redoNotes are a cadre's notes on an attempt a lead returned.
var redoNotes = []string{
	"按退回意见再次上门核实，当事人已知晓诈骗手法，已补充情况",
	"已补充劝阻过程说明：面对面讲解典型案例，当事人签字确认",
	"再次联系当事人核实，情况属实，已补录劝阻方式",
}

// approveComments are a lead's comments when approving; "" for none.
var approveComments = []string{"核实无误", "劝阻到位", "情况属实，同意办结", "", "已电话回访，同意办结"}

// returnReasons are a lead's reasons for returning work to be redone.
var returnReasons = []string{
	"未写明劝阻方式和当事人态度，请补充后重新提交",
	"电话未接通不能算劝阻成功，请上门当面核实",
	"请核实当事人是否已安装国家反诈中心App",
	"被骗金额与报案材料不符，请重新核对",
}

// refusedReasons are a cadre's reasons for asking help with a person who
// will not listen.
var refusedReasons = []string{
	"当事人拒绝沟通，坚持转账，需民警上门协助劝阻",
	"当事人不认可劝阻，情绪激动，请求派出所介入",
}

// unreachableReasons are a cadre's reasons for asking help with a person
// nobody could reach.
var unreachableReasons = []string{
	"多次电话、上门均联系不上，请求协查当事人下落",
	"当事人长期在外务工，请求协调其所在地劝阻",
}

// refusedAnswers are a county's answers to a request for help with a
// person who will not listen: the township and the cadre read them.
var refusedAnswers = []string{
	"已通知辖区派出所民警今日上门，请村干部陪同",
	"已协调银行对当事人账户加强监测，请继续做好家属工作",
	"县反诈中心已电话联系当事人，请村里跟进回访",
}

// unreachableAnswers are a county's answers to a request for help with a
// person nobody could reach.
var unreachableAnswers = []string{
	"已请公安协查当事人下落，有结果后通知乡镇",
	"已联系当事人务工地反诈中心协助劝阻",
	"已查到当事人新号码并转给乡镇，请尽快联系",
}

// pick draws one of texts.
func pick(r *rand.Rand, texts []string) string { return texts[r.IntN(len(texts))] }
